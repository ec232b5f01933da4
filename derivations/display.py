"""Presentation of derived formulas: written in ``1 − μ`` rather than SymPy's ``μ − 1``.

SymPy normalises ``1/(1 − μ)`` to ``−1/(μ − 1)`` and, not knowing μ < 1, writes ``|μ − 1|``.
For display only, μ is replaced by ``1 − m`` with a positive symbol m printed as ``(1-mu)`` in text
and ``(1 - \\mu)`` in LaTeX, which is both exact and how the literature writes these limits. Where
μ also enters otherwise (``1 + μ``), the expression is left as SymPy writes it.
"""

from __future__ import annotations

import sympy as sp

from .recursion import eta, mu

_ONE_MINUS_MU = sp.Symbol("(1-mu)", positive=True)
_LATEX_NAMES = {_ONE_MINUS_MU: r"(1 - \mu)"}


def in_one_minus_mu(expr: sp.Basic, simplify: bool = False) -> sp.Basic:
    """``expr`` with μ written through ``(1 − μ)``; ``simplify`` also factors each power of η."""
    if not isinstance(expr, (sp.Basic, sp.MatrixBase)) or not expr.has(mu):
        return expr
    tidy = (lambda e: sp.collect(sp.expand(e), eta, sp.factor)) if simplify else sp.factor_terms

    def rewrite(e: sp.Expr) -> sp.Expr:
        # Only where μ enters through 1 − μ alone: 2 (1 + μ) must not become 2 (2 − (1 − μ)).
        replaced = tidy(e.subs(mu, 1 - _ONE_MINUS_MU))
        mixed = any(
            isinstance(node, sp.Add) and node.has(_ONE_MINUS_MU) and any(term.is_number for term in node.args)
            for node in sp.preorder_traversal(replaced)
        )
        return tidy(e) if mixed else replaced

    if isinstance(expr, sp.MatrixBase):
        return expr.applyfunc(rewrite)
    return rewrite(expr)


def as_text(expr: sp.Basic, simplify: bool = False) -> str:
    return str(in_one_minus_mu(expr, simplify))


def as_latex(expr: sp.Basic, simplify: bool = False, names: dict | None = None) -> str:
    """LaTeX of ``expr``; ``names`` maps further symbols to the LaTeX they print as."""
    return sp.latex(in_one_minus_mu(expr, simplify), symbol_names={**_LATEX_NAMES, **(names or {})})
