"""Configuration: settings from Django's ``SMS_DISPATCH`` and the environment, gateway accounts from a file."""

from dispatcher.config.accounts import AccountConfig, Accounts, load_accounts
from dispatcher.config.settings import Settings, load_settings

__all__ = ["AccountConfig", "Accounts", "Settings", "load_accounts", "load_settings"]
