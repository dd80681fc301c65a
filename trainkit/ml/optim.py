"""Limited-memory BFGS for smooth, unconstrained objectives.

scipy is not available, and the linear models need a quasi-Newton method (plain gradient
descent needs thousands of steps on badly scaled count features). The search direction
uses the compact representation of the inverse-Hessian estimate (Byrd, Nocedal and
Schnabel, 1994) instead of the two-loop recursion: with the history kept as two (m x n)
arrays it costs four matrix-vector products and one small (m x m) Gram update per
iteration, which for models with ~10^6 parameters is several times faster than forty
separate vector updates. Steps come from a backtracking line search on the Armijo
condition, and only curvature pairs with positive s.y are kept, which keeps the estimate
positive definite.
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
    history = _History(x.size, memory)
    for iteration in range(1, max_iter + 1):
        g_max = float(np.max(np.abs(g))) if g.size else 0.0
        if g_max <= gtol:
            return OptimResult(x, f, g_max, iteration - 1, n_evals, True, "gradient below tolerance")
        direction = history.direction(g)
        slope = float(direction @ g)
        if slope >= 0:  # not a descent direction: restart from steepest descent
            history.clear()
            direction = -g
            slope = float(direction @ g)
        step = 1.0 if history.count else min(1.0, 1.0 / max(float(np.linalg.norm(g)), 1e-12))
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
        history.add(x_new - x, g_new - g)
        decrease = (f - f_new) / max(abs(f), abs(f_new), 1.0)
        x, f, g = x_new, f_new, g_new
        if decrease <= ftol:
            g_max = float(np.max(np.abs(g))) if g.size else 0.0
            return OptimResult(x, f, g_max, iteration, n_evals, True, "relative decrease below ftol")
    g_max = float(np.max(np.abs(g))) if g.size else 0.0
    return OptimResult(x, f, g_max, max_iter, n_evals, g_max <= gtol, "maximum iterations reached")


class _History:
    """The last m curvature pairs (s, y), stored as rows of two ring buffers."""

    def __init__(self, size: int, memory: int) -> None:
        self.s = np.zeros((memory, size))
        self.y = np.zeros((memory, size))
        self.memory = memory
        self.order: list[int] = []  # buffer rows, oldest first
        # Gram matrices over buffer rows, updated one row/column per new pair
        self.sty = np.zeros((memory, memory))
        self.yty = np.zeros((memory, memory))

    @property
    def count(self) -> int:
        return len(self.order)

    def clear(self) -> None:
        self.order.clear()

    def add(self, s: np.ndarray, y: np.ndarray) -> None:
        sy = float(s @ y)
        if sy <= 1e-10 * float(y @ y):
            return  # would break positive definiteness; skip the pair
        if len(self.order) < self.memory:
            slot = len(self.order)
        else:
            slot = self.order.pop(0)
        self.s[slot] = s
        self.y[slot] = y
        self.order.append(slot)
        y_dots = self.y @ y
        self.sty[slot, :] = self.y @ s
        self.sty[:, slot] = self.s @ y
        self.yty[slot, :] = y_dots
        self.yty[:, slot] = y_dots

    def direction(self, g: np.ndarray) -> np.ndarray:
        """-H g for the compact inverse-Hessian estimate H."""
        if not self.order:
            return -g
        rows = np.asarray(self.order)
        used = slice(0, max(self.order) + 1)
        s_buf, y_buf = self.s[used], self.y[used]
        sty = self.sty[np.ix_(rows, rows)]
        yty = self.yty[np.ix_(rows, rows)]
        newest = rows.size - 1
        gamma = sty[newest, newest] / yty[newest, newest]
        upper = np.triu(sty)
        diagonal = np.diag(np.diag(sty))
        p_s = (s_buf @ g)[rows]
        p_y = gamma * (y_buf @ g)[rows]
        r_inv_ps = np.linalg.solve(upper, p_s)
        coef_s = np.linalg.solve(upper.T, (diagonal + gamma * yty) @ r_inv_ps - p_y)
        coef_y = -r_inv_ps
        a = np.zeros(s_buf.shape[0])
        b = np.zeros(s_buf.shape[0])
        a[rows] = coef_s
        b[rows] = gamma * coef_y
        return -(gamma * g + a @ s_buf + b @ y_buf)


