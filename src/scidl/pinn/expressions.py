"""Formulas in configs: ``"-sin(pi*x)"``, ``"t*(1 - x**2)"``, ``"exp(-x**2 - y**2)"``.

A formula is parsed with :mod:`ast` and only arithmetic, numbers, the coordinate names and the
functions below are accepted, so a config cannot run arbitrary code. It compiles to a function of
the points ``X [P, D]`` (columns in the domain's order, e.g. ``x, t``) returning ``[P, 1]``.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Sequence

import torch

from scidl.errors import ConfigError

FUNCTIONS: dict[str, Callable] = {
    "sin": torch.sin, "cos": torch.cos, "tan": torch.tan, "exp": torch.exp, "log": torch.log,
    "sqrt": torch.sqrt, "tanh": torch.tanh, "sinh": torch.sinh, "cosh": torch.cosh,
    "abs": torch.abs, "arctan": torch.atan, "sign": torch.sign,
    "where": torch.where, "minimum": torch.minimum, "maximum": torch.maximum,
}
CONSTANTS = {"pi": math.pi, "e": math.e}

_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Load, ast.Constant,
          ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd, ast.Mod,
          ast.Compare, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.BoolOp, ast.And, ast.Or)


def compile_expression(text: str | float, names: Sequence[str],
                       parameters: dict[str, float] | None = None) -> Callable:
    """``text`` as a function ``X [P, len(names)] -> [P, 1]``.

    Args:
        text: the formula, or a number.
        names: the coordinate names, in column order.
        parameters: extra named constants usable in the formula (e.g. the PDE's ``nu``).

    Raises:
        ConfigError: a syntax error, or a name / construct that is not allowed.
    """
    if isinstance(text, (int, float)):
        value = float(text)
        return lambda X: torch.full((X.shape[0], 1), value, dtype=X.dtype, device=X.device)
    try:
        tree = ast.parse(str(text), mode="eval")
    except SyntaxError as error:
        raise ConfigError(f"cannot parse the formula {text!r}: {error.msg}") from None
    known = set(FUNCTIONS) | set(CONSTANTS) | set(names) | set(parameters or {})
    for node in ast.walk(tree):
        if not isinstance(node, _NODES):
            raise ConfigError(f"the formula {text!r} uses {type(node).__name__}, which is not "
                              "allowed (arithmetic, comparisons and functions only)")
        if isinstance(node, ast.Name) and node.id not in known:
            raise ConfigError(f"the formula {text!r} uses the unknown name {node.id!r}; "
                              f"known: {', '.join(sorted(known))}")
        if isinstance(node, ast.Call) and (not isinstance(node.func, ast.Name)
                                           or node.func.id not in FUNCTIONS):
            raise ConfigError(f"the formula {text!r} calls something that is not one of "
                              f"{', '.join(sorted(FUNCTIONS))}")
    code = compile(tree, "<formula>", "eval")
    constants = {**CONSTANTS, **(parameters or {})}

    def formula(X: torch.Tensor) -> torch.Tensor:
        scope = {**FUNCTIONS, **constants,
                 **{name: X[:, i:i + 1] for i, name in enumerate(names)}}
        value = eval(code, {"__builtins__": {}}, scope)  # noqa: S307 -- checked above
        return torch.as_tensor(value, dtype=X.dtype, device=X.device).expand(X.shape[0], 1) \
            if not isinstance(value, torch.Tensor) or value.ndim == 0 else value

    formula.__doc__ = str(text)
    return formula
