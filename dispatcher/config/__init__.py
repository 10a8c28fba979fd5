"""Configuration: settings from the environment, gateway accounts from a file."""

from dispatcher.config.accounts import AccountConfig, Accounts, load_accounts
from dispatcher.config.settings import Settings

__all__ = ["AccountConfig", "Accounts", "Settings", "load_accounts"]
