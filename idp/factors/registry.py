"""Factors by id; each tenant enables the ones it wants."""

from idp.factors.base import Factor
from idp.factors.password import PasswordFactor

FACTORS: dict[str, Factor] = {factor.id: factor for factor in (PasswordFactor(),)}


def get_factor(factor_id: str) -> Factor:
    return FACTORS[factor_id]
