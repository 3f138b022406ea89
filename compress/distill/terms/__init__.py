"""Knowledge terms: response, feature, relation and policy."""
from .base import Term
from .feature import Feature
from .policy import Policy
from .relation import RKDAngle, RKDDistance, SimilarityPreserving
from .response import JSD, KL, MSE

__all__ = ["Term", "KL", "JSD", "MSE", "Feature", "RKDDistance", "RKDAngle", "SimilarityPreserving", "Policy"]
