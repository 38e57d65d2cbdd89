"""jetson-rt: real-time inference nodes for NVIDIA Jetson Orin fleets."""

from __future__ import annotations

__version__ = "0.1.0"
