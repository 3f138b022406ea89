"""DeepSense 6G scenario-9 beam tracking data: the real layout's loader and a synthetic generator with
the same frames/windows interface (plain numpy/torch; the LightningDataModule lives in
``tasks.beam_tracking``)."""
from .camera import motion_mask, motion_masks
from .codebook import beam_powers, codebook
from .radar import RadarConfig, radar_maps, synthesize_cube
from .synthetic import RawSequence, SceneConfig, generate_frames, generate_sequence, process_sequence
from .windows import MODALITIES, N_FUTURE, N_IN, BeamFrames, assemble, check_modality, split_sequences, \
    step_size, window_starts

__all__ = ["RadarConfig", "radar_maps", "synthesize_cube", "motion_mask", "motion_masks", "codebook",
           "beam_powers", "SceneConfig", "RawSequence", "generate_sequence", "process_sequence",
           "generate_frames", "BeamFrames", "MODALITIES", "N_IN", "N_FUTURE", "assemble", "check_modality",
           "split_sequences", "step_size", "window_starts"]
