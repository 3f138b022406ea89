"""Knowledge terms: response, feature, relation (RKD, similarity-preserving, sampled pairs) and policy."""
from .base import Term
from .feature import Feature
from .pair_relation import PairRelation
from .policy import Policy
from .relation import RKDAngle, RKDDistance, SimilarityPreserving
from .response import JSD, KL, MSE

__all__ = ["Term", "KL", "JSD", "MSE", "Feature", "RKDDistance", "RKDAngle", "SimilarityPreserving", "PairRelation",
           "Policy"]
