"""Calibrated uncertainty for any scidl model: every method returns a :class:`Prediction`."""

from scidl.uq.prediction import Prediction, normal_quantile

__all__ = ["Prediction", "normal_quantile"]
