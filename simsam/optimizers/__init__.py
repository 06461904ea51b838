"""Optimizers: pure (init, step) pairs; one step is one iteration and counts its gradients."""
from simsam.optimizers.unified_sam import SAM, SGD, USAM, SGDParams, UnifiedSAM, UnifiedSAMParams
from simsam.optimizers.lookahead import SALA, Lookahead
from simsam.optimizers.lookbehind import LookbehindSAM, LookbehindSAMParams
from simsam.optimizers.wsam import WSAM, WSAMParams

__all__ = ["SGD", "SGDParams", "UnifiedSAM", "UnifiedSAMParams", "USAM", "SAM"]
__all__ += ["Lookahead", "SALA", "LookbehindSAM", "LookbehindSAMParams", "WSAM", "WSAMParams"]

OPTIMIZERS = {
    "sgd": SGD, "unified_sam": UnifiedSAM, "usam": USAM, "sam": SAM,
    "lookahead": Lookahead, "sala": SALA, "lookbehind_sam": LookbehindSAM, "wsam": WSAM,
}
__all__ += ["OPTIMIZERS"]
