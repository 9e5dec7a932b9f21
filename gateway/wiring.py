"""Plugs the parts' services into a node: the one place that knows every part.

Each capability (cameras, patrol, cases, wall) adds its services and routes here.
"""

from __future__ import annotations

from fastapi import FastAPI

from xueliang.gateway.node import Node


async def assemble(node: Node, app: FastAPI) -> None:
    """Register the node's background services and the parts' API routes."""
    del node, app  # the foundation has no part services yet
