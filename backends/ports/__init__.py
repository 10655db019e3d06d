"""Ports and TIME_WAIT: who listens on each watched port, what its connections do, and freeing it.

One pass over the kernel's sockets (diag: netlink sock_diag; proc: /proc/net as the
fallback) is tallied per port and judged (model), with the listeners' owners (owners);
``free`` stops the process that holds a port, re-verified at the moment of acting. DESIGN.md
"The collector contract" and "Actions". The names below are what panels/, console/ and the other
resources may use.
"""

from typing import TYPE_CHECKING

from backends.face import lazy_face

if TYPE_CHECKING:
    from backends.ports.bind import bind_test
    from backends.ports.collect import PortsCollector
    from backends.ports.detail import PortDetail, port_detail
    from backends.ports.free import FreePortAction
    from backends.ports.model import PortRow, PortsValue, PortVerdict, Proto, TcpState, verdict_of

__getattr__, __dir__, __all__ = lazy_face(__name__)
