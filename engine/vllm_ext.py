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
    a broadcast in the weight group: gloo on CPU, NCCL on GPU)."""

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
        ``embed_tokens``), so its packed copy would keep the old weights: :meth:`_raylign_refresh_tied_head`.
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
        """Bring a tied LM head's kernel up to date with the embeddings just reloaded. On the CPU backend the
        reload has already packed the embedding matrix for a GEMM (``embed_tokens.cpu_linear``: vLLM packs it
        although a lookup never uses it), and the head shares that very matrix, so the head takes that GEMM
        instead of packing the matrix a second time (at a 150k vocabulary, the largest matrix of a small model).
        Elsewhere the head's own post-load processing runs again."""
        model = self.model_runner.get_model()
        head = getattr(model, "lm_head", None)
        embed = getattr(getattr(model, "model", None), "embed_tokens", None)
        if head is None or embed is None or getattr(head, "weight", None) is not getattr(embed, "weight", None):
            return
        method = getattr(head, "quant_method", None)
        if method is None:
            return
        if callable(getattr(embed, "cpu_linear", None)) and type(method) is type(getattr(embed, "quant_method", None)):
            head.cpu_linear = embed.cpu_linear
            return
        method.process_weights_after_loading(head)

    # ------------------------------------------------------------------------------------------ weight group
    # The ``collective`` sync (engine/weight_group.py): the learner is rank 0; engine e's vLLM worker with
    # tensor-parallel rank r is rank 1 + e * tp + r. gloo on CPU (tested), NCCL on GPU (UNTESTED here).

    def raylign_group_join(self, backend: str, host: str, port: int, rank_offset: int, world_size: int,
                           timeout_s: float, tag: str) -> int:
        """Join a fresh weight group (leaving any earlier one); returns this worker's rank in it."""
        from raylign.engine.weight_group import open_group

        self.raylign_group_leave()
        rank = rank_offset + self.rank  # self.rank: this worker's rank inside its engine (0..tp-1)
        self._raylign_group = open_group(backend, host, port, rank, world_size, timeout_s, tag, self.device)
        self._raylign_group_rank = rank
        return rank

    def raylign_group_receive(self, payload) -> int:
        """Receive a ``weight_group.CollectivePayload`` broadcast by rank 0 and reload it (or only receive it,
        when this worker's rank is not in ``payload.load_ranks``). Returns the tensors loaded."""
        from raylign.engine.weight_group import receive_tensors

        comm = getattr(self, "_raylign_group", None)
        if comm is None:
            raise RuntimeError("collective weight sync: this engine worker is in no weight group")
        if not hasattr(self, "_raylign_group_buffers"):
            self._raylign_group_buffers = {}
        tensors = receive_tensors(comm, payload, self._raylign_group_buffers)
        if payload.load_ranks is not None and self._raylign_group_rank not in payload.load_ranks:
            for _ in tensors:  # take part in the broadcast, keep the weights this engine already serves
                pass
            return 0
        return self._raylign_reload(tensors)

    def raylign_group_leave(self) -> None:
        self._raylign_group = None  # dropping the group closes its connections
