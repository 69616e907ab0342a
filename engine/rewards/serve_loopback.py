"""Loopback for a local verifier service: Ray's own ports and each Serve replica's gRPC port on 127.0.0.1.

A local ``raylign serve verifiers`` starts its own Ray (:func:`init_loopback_ray`) so that nothing but the
HTTP port the user chose is reachable from elsewhere; :func:`keep_replica_grpc_on_loopback` runs in each
replica. Joining a cluster (``RAY_ADDRESS``) leaves Ray's ports as that cluster has them.
"""
from __future__ import annotations

import ipaddress
import os
import sys

from raylign.engine.config import RayConfig


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def keep_replica_grpc_on_loopback() -> bool:
    """On a loopback-only node, bind this Serve replica's inter-deployment gRPC server to loopback too.

    Ray Serve 2.60 binds it to ``[::]:0`` (every interface) whatever the node address, though it advertises the
    node address to its callers; call this in the replica before Serve finishes initialising it. Changes nothing
    on a node with a routable address (a cluster) or where Ray's code differs; returns whether it applied.
    """
    import ray

    try:
        from ray.serve._private import replica as replica_module
    except ImportError:
        return False
    original = getattr(replica_module, "add_port_to_grpc_server", None)
    node_ip = ray.util.get_node_ip_address()
    if original is None or getattr(original, "raylign_loopback", False) or not is_loopback(node_ip):
        return False
    host = f"[{node_ip}]" if ":" in node_ip else node_ip

    def add_port_to_grpc_server(server, address: str):
        if address.startswith("[::]:") or address.startswith("0.0.0.0:"):
            address = f"{host}:{address.rsplit(':', 1)[1]}"
        return original(server, address)

    add_port_to_grpc_server.raylign_loopback = True
    replica_module.add_port_to_grpc_server = add_port_to_grpc_server
    return True


def init_loopback_ray(cfg: RayConfig):
    """Start a local Ray whose own ports (GCS, raylet, object manager, workers, agents) listen on loopback only.

    Ray derives every bind address from the node IP; on Linux it rewrites ``_node_ip_address="127.0.0.1"`` to
    the routable address unless its single-machine mode is on (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read
    when Ray is imported, hence the module constant too). Returns the ``ray`` module; says so on stderr when
    Ray still ended up on another address.
    """
    from raylign.engine.cluster import init_ray

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    try:
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False
    except (ImportError, AttributeError):  # another Ray version: checked below
        pass
    ray = init_ray(cfg)
    node_ip = ray.util.get_node_ip_address()
    if not is_loopback(node_ip):
        print(f"raylign: warning: Ray's own ports listen on {node_ip}, not only on loopback "
              "(this Ray version does not allow a loopback node)", file=sys.stderr)
    return ray
