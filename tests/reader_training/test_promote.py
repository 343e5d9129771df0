"""Model versions: which reader serves, listing versions, and promotion that refuses a worse one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from transformers import AutoModelForQuestionAnswering, AutoTokenizer, set_seed

from evaluation.squad import load_squad, write_squad
from pipelines.reader_registry import (
    SHIPPED_NAME,
    ReaderNotFoundError,
    list_models,
    model_path,
    resolve_reader,
    serving_name,
    set_serving,
)
from pipelines.settings import REPO_ROOT, SHIPPED_READER, Settings
from reader_training.promote import PromotionError, promote_model

DEMO_DEV = REPO_ROOT / "data" / "demo" / "labels" / "dev.json"


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory, tiny_reader: Path, tiny_base: str) -> Path:
    """A models folder with the tiny reader ("tiny") and the untrained tiny BERT ("untrained")."""
    models = tmp_path_factory.mktemp("versions")
    shutil.copytree(tiny_reader, models / "tiny")
    set_seed(0)  # the fresh QA head
    AutoModelForQuestionAnswering.from_pretrained(tiny_base).save_pretrained(models / "untrained")
    AutoTokenizer.from_pretrained(tiny_base).save_pretrained(models / "untrained")
    return models


@pytest.fixture
def settings(tmp_path: Path, versions: Path) -> Settings:
    settings = Settings(home=tmp_path / "home")
    shutil.copytree(versions, settings.models_dir)
    return settings


@pytest.fixture(scope="module")
def eval_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten demo dev pairs, answerable and unanswerable."""
    examples, _ = load_squad(DEMO_DEV)
    answerable = [ex for ex in examples if ex.answers][:6]
    unanswerable = [ex for ex in examples if not ex.answers][:4]
    path = tmp_path_factory.mktemp("eval") / "dev-small.json"
    write_squad(answerable + unanswerable, path)
    return path


def test_promotion_refuses_a_worse_model_unless_forced(settings: Settings, eval_file: Path) -> None:
    set_serving(settings, "tiny")
    with pytest.raises(PromotionError) as err:
        promote_model(settings, "untrained", eval_file)
    message = str(err.value)
    assert message.startswith("untrained: F1 ")
    assert "on dev-small.json is lower than the serving reader's" in message
    assert "--force" in message
    assert serving_name(settings) == "tiny"
    assert resolve_reader(settings) == str(settings.models_dir / "tiny")

    assert promote_model(settings, "untrained", eval_file, force=True) == (
        "untrained now serves (forced)"
    )
    assert serving_name(settings) == "untrained"

    # The better model takes over again without force, and says by how much.
    message = promote_model(settings, "tiny", eval_file)
    assert message.startswith("tiny now serves: F1 ") and "on dev-small.json (was " in message
    assert serving_name(settings) == "tiny"
    assert promote_model(settings, "tiny", eval_file) == "tiny now serves"  # already serving


def test_promotion_of_a_missing_or_incomplete_version_fails(settings: Settings) -> None:
    with pytest.raises(PromotionError, match="nope: no complete model folder"):
        promote_model(settings, "nope")
    (settings.models_dir / "half").mkdir()
    (settings.models_dir / "half" / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(PromotionError, match="half: no complete model folder"):
        promote_model(settings, "half")


def test_set_serving_validates_names_and_writes_atomically(settings: Settings) -> None:
    assert set_serving(settings, "tiny") == settings.models_dir / "tiny"
    data = json.loads(settings.serving_file.read_text(encoding="utf-8"))
    assert data["name"] == "tiny" and data["since"]
    for bad in ("../tiny", ".hidden", "", "a/b"):
        with pytest.raises(ValueError, match="invalid model name"):
            set_serving(settings, bad)
    with pytest.raises(ReaderNotFoundError, match="missing: no complete model folder"):
        set_serving(settings, "missing")
    assert serving_name(settings) == "tiny"
    assert not [p for p in settings.models_dir.iterdir() if p.name.endswith(".tmp")]


def test_resolve_reader_order(settings: Settings, tiny_reader: Path) -> None:
    # An explicit folder, or a version name, wins over the serving file.
    set_serving(settings, "untrained")
    assert resolve_reader(settings.with_(reader_model=str(tiny_reader))) == str(tiny_reader)
    assert resolve_reader(settings.with_(reader_model="tiny")) == str(settings.models_dir / "tiny")
    with pytest.raises(ReaderNotFoundError, match="not a reader model folder"):
        resolve_reader(settings.with_(reader_model=str(settings.home / "no-such-folder")))
    with pytest.raises(ReaderNotFoundError):
        resolve_reader(settings.with_(reader_model=str(settings.models_dir)))  # not a model
    assert resolve_reader(settings.with_(reader_model="org/some-reader")) == "org/some-reader"
    # Then the serving version.
    assert resolve_reader(settings) == str(settings.models_dir / "untrained")


def test_resolve_reader_falls_back_to_the_shipped_reader(settings: Settings) -> None:
    for serving in ('{"name": "deleted-version"}', "not json", None):
        if serving is None:
            settings.serving_file.unlink()
        else:
            settings.serving_file.write_text(serving, encoding="utf-8")
        if (SHIPPED_READER / "config.json").is_file():
            assert resolve_reader(settings) == str(SHIPPED_READER)
        else:
            with pytest.raises(ReaderNotFoundError, match="train one with `docqa train`"):
                resolve_reader(settings)
    assert model_path(settings, SHIPPED_NAME) == SHIPPED_READER


def test_list_models_lists_versions_and_marks_the_serving_one(settings: Settings) -> None:
    # A hidden work folder and an incomplete folder are not versions.
    (settings.models_dir / ".tiny.work").mkdir()
    (settings.models_dir / "incomplete").mkdir()
    set_serving(settings, "tiny")
    infos = list_models(settings)
    versions = [i for i in infos if i.name != SHIPPED_NAME]
    # Newest first; "untrained" has no metrics.json, so no date, so last.
    assert [i.name for i in versions] == ["tiny", "untrained"]
    assert [i.name for i in infos if i.serving] == ["tiny"]
    tiny = versions[0]
    assert tiny.path == settings.models_dir / "tiny" and tiny.created
    assert tiny.heldout_f1 is not None and 0.0 <= tiny.heldout_f1 <= 100.0
    assert versions[1].heldout_f1 is None
    assert [i.name for i in infos][-1:] == (
        [SHIPPED_NAME] if (SHIPPED_READER / "config.json").is_file() else ["untrained"]
    )

    set_serving(settings, "untrained")
    assert [i.name for i in list_models(settings) if i.serving] == ["untrained"]
