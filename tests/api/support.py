"""What the API tests share besides fixtures: the keys' headers, the question, the reader."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from pipelines.reader import ReaderConfig
from pipelines.settings import REPO_ROOT, Settings

FIXTURES = REPO_ROOT / "tests" / "fixtures"
WIFI_QUESTION = "How long are the guest Wi-Fi vouchers printed by reception valid?"
READER = "tiny-answers"


@dataclass(frozen=True)
class Keys:
    """A viewer key (made with the old role name ``ask``), an editor and an admin key, none
    with groups; ``.ask``, ``.editor`` and ``.admin`` are their request headers."""

    ask_token: str
    admin_token: str
    editor_token: str = ""

    @staticmethod
    def header(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    @property
    def ask(self) -> dict[str, str]:
        return self.header(self.ask_token)

    @property
    def admin(self) -> dict[str, str]:
        return self.header(self.admin_token)

    @property
    def editor(self) -> dict[str, str]:
        return self.header(self.editor_token)


def install_reader(settings: Settings, tiny_reader: Path, name: str, threshold: float) -> None:
    target = settings.models_dir / name
    shutil.copytree(tiny_reader, target)
    config = ReaderConfig.load(target)
    ReaderConfig(**{**config.__dict__, "no_answer_threshold": threshold}).save(target)


def ask_requests_counted(metrics_text: str) -> float:
    """Successful ``POST /ask`` requests in a /metrics scrape (all workers or replicas)."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        s.value
        for family in text_string_to_metric_families(metrics_text)
        for s in family.samples
        if s.name == "docqa_api_requests_total"
        and s.labels == {"endpoint": "/ask", "method": "POST", "status": "200"}
    )
