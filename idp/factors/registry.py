"""Factors by id, in the order a sign-in offers them; each tenant enables the ones it wants."""

from idp.factors.base import Factor
from idp.factors.email_code import EmailCodeFactor
from idp.factors.password import PasswordFactor
from idp.factors.recovery_code import RecoveryCodeFactor
from idp.factors.totp import TotpFactor
from idp.factors.webauthn import WebAuthnFactor

FACTORS: dict[str, Factor] = {factor.id: factor
                              for factor in (PasswordFactor(), EmailCodeFactor(),
                                             WebAuthnFactor(), TotpFactor(),
                                             RecoveryCodeFactor())}


def get_factor(factor_id: str) -> Factor:
    return FACTORS[factor_id]
