"""The vLLM worker extension raylign installs in every rollout engine (``worker_extension_cls``).

vLLM mixes this class into its own worker class, so ``self`` is the vLLM worker: ``self.model_runner`` owns the
model. Methods are called through ``llm.collective_rpc("raylign_...", args=...)``; their names carry a
``raylign_`` prefix because vLLM refuses an extension whose attribute names clash with its worker's.

Keep this module free of Ray and of heavy imports: vLLM imports it inside its worker process.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import torch


class RaylignWorkerExtension:
    """Weight reloading for a running vLLM engine (CPU: from the object store's buffers or a file in /dev/shm;
    GPU: NCCL broadcast)."""

    # ------------------------------------------------------------------------------------------ reloading

    def raylign_reload_from_file(self, path: str) -> int:
        """Load every tensor of the safetensors file ``path`` into the engine; returns the tensor count."""
        from safetensors import safe_open

        def tensors() -> Iterator[tuple[str, torch.Tensor]]:
            with safe_open(path, framework="pt", device="cpu") as f:
                for name in f.keys():
                    yield name, f.get_tensor(name)

        return self._raylign_reload(tensors())

    def raylign_load_weights(self, weights) -> int:
        """Load ``weights`` handed over in this process (the engine runs in the rollout actor's process, so
        ``collective_rpc`` passes them by reference): a ``weight_sync.FlatWeights`` (views of the object store's
        buffers, no copy before vLLM's loaders) or a ``{name: tensor}`` dict. Returns the tensor count."""
        items = weights.tensors() if hasattr(weights, "tensors") else iter(weights.items())
        return self._raylign_reload(items)

    def _raylign_reload(self, weights: Iterable[tuple[str, torch.Tensor]]) -> int:
        """Reload through vLLM's in-place reloader, which re-runs each layer's post-load processing.

        Plain ``model.load_weights`` is not enough on the CPU backend: there linear layers keep a repacked copy
        of their weights (``layer.cpu_linear``) built after loading. ``reload_weights`` redoes that packing for
        every layer it loads, but a tied LM head receives no tensor of its own (the checkpoint has only
        ``embed_tokens``), so its packed copy would keep the old weights: it is re-processed here.
        """
        count = 0

        def counted():
            nonlocal count
            for item in weights:
                count += 1
                yield item

        self.model_runner.reload_weights(weights_iterator=counted())
        self._raylign_refresh_tied_head()
        return count

    def _raylign_refresh_tied_head(self) -> None:
        model = self.model_runner.get_model()
        head = getattr(model, "lm_head", None)
        embed = getattr(getattr(model, "model", None), "embed_tokens", None)
        if head is None or embed is None or getattr(head, "weight", None) is not getattr(embed, "weight", None):
            return
        method = getattr(head, "quant_method", None)
        if method is not None:
            method.process_weights_after_loading(head)

    # ------------------------------------------------------------------------------------------ NCCL (GPU)
    # UNTESTED here (no GPU on the development machine). The learner is rank 0; engine e's vLLM worker with
    # tensor-parallel rank r is rank 1 + e * tp + r. Every rank calls broadcast in the same tensor order.

    def raylign_nccl_init(self, master_addr: str, master_port: int, rank_offset: int, world_size: int) -> int:
        from vllm.distributed.device_communicators.pynccl import PyNcclCommunicator
        from vllm.distributed.utils import StatelessProcessGroup

        rank = rank_offset + self.rank  # self.rank: this worker's rank inside its engine (0..tp-1)
        group = StatelessProcessGroup.create(host=master_addr, port=master_port, rank=rank, world_size=world_size)
        self._raylign_nccl = PyNcclCommunicator(group, device=self.device)
        return rank

    def raylign_nccl_receive(self, meta: list[tuple[str, tuple[int, ...], str]]) -> int:
        """Receive each ``(name, shape, dtype)`` tensor broadcast by rank 0 and reload it."""
        comm = self._raylign_nccl

        def tensors() -> Iterator[tuple[str, torch.Tensor]]:
            for name, shape, dtype in meta:
                buf = torch.empty(shape, dtype=getattr(torch, dtype), device=self.device)
                comm.broadcast(buf, src=0, stream=torch.cuda.current_stream())
                yield name, buf

        out = self._raylign_reload(tensors())
        torch.cuda.synchronize()
        return out
