"""etk hook implementations of etk-kernels: the `rsa-bert` backbone and the kernel status line."""

from __future__ import annotations

from typing import Any

from etk_core.hookspecs import hookimpl


@hookimpl
def etk_register_models() -> list[type[Any]]:
    from etk_kernels.rsa_bert import RsaBert

    return [RsaBert]


@hookimpl
def etk_plugin_notes() -> list[str]:
    from etk_kernels.build_status import kernel_note

    return [kernel_note()]
