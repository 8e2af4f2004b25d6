"""One run folder, one writer: a second run into a folder another process is writing is refused in one line,
and the lock goes with the process that held it (a killed run leaves nothing that blocks its --resume)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from etk_core.errors import EtkError
from etk_core.run import LOCK_FILE, lock_folder, output_state
from etk_core.zoo import max_positions

HOLD = "import sys, time; from pathlib import Path; from etk_core.run import lock_folder; " \
       "h = lock_folder(Path(sys.argv[1])); print('locked', flush=True); time.sleep(60)"


def test_a_folder_locked_by_another_process_is_refused(tmp_path: Path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(EtkError, match=rf"being written by etk pid {holder.pid}; wait for that run"):
            lock_folder(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    lock_folder(tmp_path).close()  # the kernel released the killed holder's lock


def test_the_lock_file_is_not_a_foreign_file(tmp_path: Path):
    (tmp_path / LOCK_FILE).write_text("etk pid 1")
    assert output_state(tmp_path) == ("empty", "")
    (tmp_path / "config.yaml").write_text("seed: 1\n")
    assert output_state(tmp_path) == ("early", "")


def test_max_positions_counts_the_padding_offset():
    from transformers import BertConfig, RobertaConfig

    class Encoder:
        def __init__(self, config):
            self.config = config

    assert max_positions(Encoder(BertConfig(max_position_embeddings=512))) == 512
    assert max_positions(Encoder(RobertaConfig(max_position_embeddings=514, pad_token_id=1))) == 512
    assert max_positions(object()) is None
