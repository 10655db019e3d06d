"""The PCAP panel: the capture tree's size, growth and time to full; its file index and cleanup dialog."""

from panels.pcap.panel import PcapPanel

__all__ = ["PcapPanel"]
