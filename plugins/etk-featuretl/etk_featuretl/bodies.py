"""Shared and private bodies built from one app model. A body is the app model with its `head` (the linear
output layer) taken off: called like the model, its `logits` are the representation the head read. A private
body is a copy of the shared one: `full` (the whole encoder; the embedding tables stay shared unless
`share_embeddings` is off) or `top` (a PLM's top N transformer layers; the embeddings and lower layers are the
shared body's own modules, so each private part costs N layers)."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from etk_core.errors import ConfigError

PRIVATE_KINDS = ("full", "top")


def take_head(model: nn.Module, algorithm: str) -> tuple[nn.Module, nn.Linear]:
    """The app model as a body (its head replaced by the identity) and the head it had."""
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear):
        raise ConfigError(f"algorithm {algorithm!r} puts domain heads on the app model's representation and needs "
                          f"a linear `head` output layer; {type(model).__name__} has "
                          f"{type(head).__name__ if head is not None else 'none'} (text_match: --set app.bi_head=mlp)")
    model.head = nn.Identity()
    return model, head


def represent(body: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    """The representation of a batch (labels ignored)."""
    return body(**{key: value for key, value in batch.items() if key != "labels"})["logits"]


def layer_stack(body: nn.Module) -> tuple[str, nn.ModuleList]:
    """Path and module of a PLM body's transformer layers (the ModuleList as long as the encoder's layer
    count)."""
    encoder = getattr(body, "encoder", None)
    count = getattr(getattr(encoder, "config", None), "num_hidden_layers", None)
    if count:
        for path, module in body.named_modules():
            if isinstance(module, nn.ModuleList) and len(module) == count:
                return path, module
    raise ConfigError(f"algo.private=top copies the top layers of a PLM encoder; {type(body).__name__} has none "
                      f"(a classic model): use --set algo.private=full")


def private_body(shared: nn.Module, kind: str, layers: int, share_embeddings: bool) -> nn.Module:
    """A private copy of `shared` (see the module docstring); its shared modules are `shared`'s own."""
    private = copy.deepcopy(shared)
    if kind == "full":
        if share_embeddings:
            for path, module in shared.named_modules():
                if isinstance(module, nn.Embedding):
                    _replace(private, path, module)
        return private
    check_private(shared, kind, layers)
    path, stack = layer_stack(shared)
    keep = {f"{path}.{index}" for index in range(len(stack) - layers, len(stack))}
    _share_all_but(private, shared, keep, "")
    return private


def check_private(body: nn.Module, kind: str, layers: int) -> None:
    """Refuse a private part that `body` cannot have (ConfigError)."""
    if kind == "top":
        _, stack = layer_stack(body)
        if not 1 <= layers <= len(stack):
            raise ConfigError(f"algo.private_layers={layers}: the encoder has {len(stack)} layers; choose 1 to "
                              f"{len(stack)}")


def _replace(root: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, module)


def _share_all_but(private: nn.Module, shared: nn.Module, keep: set[str], prefix: str) -> None:
    """Point every submodule of `private` at `shared`'s, except those in `keep` (paths) and their ancestors."""
    for name in list(private._modules):
        path = prefix + name
        if path in keep:
            continue
        if any(kept.startswith(path + ".") for kept in keep):
            _share_all_but(private._modules[name], shared._modules[name], keep, path + ".")
        else:
            private._modules[name] = shared._modules[name]
