"""Configuration: settings from the environment, gateway accounts from a file."""

from config.accounts import AccountConfig, Accounts, load_accounts
from config.settings import Settings

__all__ = ["AccountConfig", "Accounts", "Settings", "load_accounts"]
