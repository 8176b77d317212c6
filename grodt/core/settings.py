"""Process-wide settings, read from environment variables prefixed ``GRODT_``.

Every path default is relative to the working directory, so a clone works in place; operators
override them per deployment (``GRODT_CATALOG=/srv/catalog``). Secrets never live here: broker
credentials are read by the node builders from their own environment variables.
"""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings
from pydantic_settings import SettingsConfigDict


class Settings(BaseSettings):
    """Settings of one grodt process.

    Attributes
    ----------
    catalog : Path
        The default ParquetDataCatalog directory (``GRODT_CATALOG``).
    runs_dir : Path
        Where run directories (reports, logs, forensics, tracking store) are created
        (``GRODT_RUNS_DIR``).
    tracking_uri : str | None
        MLflow tracking URI (``GRODT_TRACKING_URI``, falling back to ``MLFLOW_TRACKING_URI``);
        ``None`` means the embedded SQLite store in ``runs_dir``.
    artifact_root : str | None
        MLflow artifact location for new experiments (``GRODT_ARTIFACT_ROOT``); ``None`` means
        ``<runs_dir>/mlartifacts`` beside the embedded store.
    kafka_bootstrap : str | None
        Kafka bootstrap servers for decision forensics (``GRODT_KAFKA_BOOTSTRAP``); ``None`` means
        forensics go to Parquet in the run directory.
    real_data : Path | None
        Optional folder of real third-party data for benchmarks (``GRODT_REAL_DATA``).
    """

    model_config = SettingsConfigDict(env_prefix="GRODT_", extra="ignore")

    catalog: Path = Field(default=Path("data/catalog"))
    runs_dir: Path = Field(default=Path("runs"))
    tracking_uri: str | None = None
    artifact_root: str | None = None
    kafka_bootstrap: str | None = None
    real_data: Path | None = None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process settings (read once; tests call ``get_settings.cache_clear()``)."""
    return Settings()
