"""segflow: warehouse-native customer tagging and layered operations (用户分层运营)."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
__version__ = "0.1.0"
