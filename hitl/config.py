"""One settings object, from `HITL_*` environment variables and command-line flags."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HITL_", extra="ignore")

    database_url: str = "sqlite:///./hitl.db"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    process_delay: float = Field(1.0, ge=0, description="seconds the default processor sleeps")
    review_deadline_seconds: float | None = Field(
        None, gt=0, description="the default flow's reviews are decided after this long"
    )
    # Only approve: a rejection would rerun the default flow's processor and ask again, with a
    # new deadline, for ever when nobody looks.
    on_deadline: str | None = Field(
        None,
        pattern="^approve$",
        description="what the default flow's deadline decides: approve, or (unset) fail the task",
    )
    max_input_bytes: int = Field(1024 * 1024, ge=1)
    concurrency: int = Field(32, ge=1, description="tasks one process runs at once")
    run_workers: bool = True
    lease_seconds: float = Field(15.0, gt=0)
    poll_interval: float = Field(1.0, gt=0)
    heartbeat_seconds: float = Field(15.0, gt=0)
    max_claims: int = Field(10, ge=1, description="claims of one task before it is failed")
    pool_size: int = Field(10, ge=1)
    database_wait_seconds: float = Field(
        30.0, ge=0, description="how long start-up waits for the database to answer"
    )
    create_database: bool = Field(
        True,
        description="start-up creates the schema in a new, empty database (saying so); false "
        "refuses to start without an existing one",
    )
    flows: list[str] = Field(default_factory=list, description="name=module:factory entries")
    default_flow: str = "feedback"
    log_level: str = "info"
    max_header_bytes: int = Field(
        32 * 1024, ge=1024, description="a request line and headers over this get 431"
    )
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="a request's headers not complete after this get 408"
    )

    @model_validator(mode="after")
    def _deadline_needs_seconds(self) -> Settings:
        if self.on_deadline is not None and self.review_deadline_seconds is None:
            raise ValueError(
                "HITL_ON_DEADLINE needs HITL_REVIEW_DEADLINE_SECONDS: set how long reviews wait"
            )
        return self
