"""Limited-memory BFGS for smooth, unconstrained objectives.

scipy is not available, and the linear models need a quasi-Newton method (plain gradient
descent needs thousands of steps on badly scaled count features). This follows the
textbook two-loop recursion (Nocedal & Wright, Numerical Optimization, Alg. 7.4) with a
backtracking line search on the Armijo condition that only accepts curvature pairs with
positive s.y, which keeps the inverse-Hessian estimate positive definite.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


@dataclass
class OptimResult:
    """Where the minimiser stopped and why."""

    x: np.ndarray
    fun: float
    grad_max: float
    n_iter: int
    n_evals: int
    converged: bool
    message: str


def lbfgs(
    objective: Objective,
    x0: np.ndarray,
    max_iter: int = 100,
    gtol: float = 1e-4,
    ftol: float = 64 * np.finfo(float).eps,
    memory: int = 10,
    max_line_search: int = 30,
) -> OptimResult:
    """Minimise `objective` (returning value and gradient) from `x0`.

    Stops when the largest gradient component is below `gtol` (the same test scipy's
    L-BFGS-B applies with sklearn's `tol`), when the relative decrease of the value is
    below `ftol`, or after `max_iter` iterations.
    """
    x = np.array(x0, dtype=np.float64)
    f, g = objective(x)
    n_evals = 1
    s_hist: list[np.ndarray] = []
    y_hist: list[np.ndarray] = []
    rho_hist: list[float] = []
    for iteration in range(1, max_iter + 1):
        g_max = float(np.max(np.abs(g))) if g.size else 0.0
        if g_max <= gtol:
            return OptimResult(x, f, g_max, iteration - 1, n_evals, True, "gradient below tolerance")
        direction = _two_loop(g, s_hist, y_hist, rho_hist)
        slope = float(direction @ g)
        if slope >= 0:  # not a descent direction: restart from steepest descent
            s_hist.clear()
            y_hist.clear()
            rho_hist.clear()
            direction = -g
            slope = float(direction @ g)
        step = 1.0 if s_hist else min(1.0, 1.0 / max(float(np.linalg.norm(g)), 1e-12))
        accepted = False
        for _ in range(max_line_search):
            x_new = x + step * direction
            f_new, g_new = objective(x_new)
            n_evals += 1
            if np.isfinite(f_new) and f_new <= f + 1e-4 * step * slope:
                accepted = True
                break
            step *= 0.5
        if not accepted:
            return OptimResult(x, f, g_max, iteration, n_evals, False, "line search failed")
        s = x_new - x
        y = g_new - g
        sy = float(s @ y)
        if sy > 1e-10 * float(y @ y):
            s_hist.append(s)
            y_hist.append(y)
            rho_hist.append(1.0 / sy)
            if len(s_hist) > memory:
                s_hist.pop(0)
                y_hist.pop(0)
                rho_hist.pop(0)
        decrease = (f - f_new) / max(abs(f), abs(f_new), 1.0)
        x, f, g = x_new, f_new, g_new
        if decrease <= ftol:
            g_max = float(np.max(np.abs(g))) if g.size else 0.0
            return OptimResult(x, f, g_max, iteration, n_evals, True, "relative decrease below ftol")
    g_max = float(np.max(np.abs(g))) if g.size else 0.0
    return OptimResult(x, f, g_max, max_iter, n_evals, g_max <= gtol, "maximum iterations reached")


def _two_loop(
    g: np.ndarray, s_hist: list[np.ndarray], y_hist: list[np.ndarray], rho_hist: list[float]
) -> np.ndarray:
    """The L-BFGS search direction -H g from the stored curvature pairs."""
    q = g.copy()
    alphas = []
    for s, y, rho in zip(reversed(s_hist), reversed(y_hist), reversed(rho_hist), strict=True):
        alpha = rho * float(s @ q)
        alphas.append(alpha)
        q -= alpha * y
    if s_hist:
        s, y = s_hist[-1], y_hist[-1]
        q *= float(s @ y) / float(y @ y)
    for (s, y, rho), alpha in zip(zip(s_hist, y_hist, rho_hist, strict=True), reversed(alphas), strict=True):
        beta = rho * float(y @ q)
        q += (alpha - beta) * s
    return -q
