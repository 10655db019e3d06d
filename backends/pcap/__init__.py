"""The PCAP capture cache: how much the capture tree holds, how fast it grows, and retention cleanup.

A scan (walk, scan pool) counts the tree into a shared cache (cache, source) so that every
console and ``snapshot`` on the host shares one scan; retention plans what may go and
cleanup deletes it, never a file that is open or locked (inuse). DESIGN.md "The collector contract"
and "Actions". What panels/, console/ and the other resources may use is listed below;
everything else is this package's own.
"""

from typing import TYPE_CHECKING

from backends.face import lazy_face

if TYPE_CHECKING:
    from backends.pcap.cleanup import PcapCleanup, deleted_log_path
    from backends.pcap.index import IndexProgress, build_index
    from backends.pcap.model import PcapSettings, PcapStats
    from backends.pcap.source import pcap_collector

__getattr__, __dir__, __all__ = lazy_face(__name__)
