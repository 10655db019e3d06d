"""The demo world (``opsconsole --demo``): real helper processes, one module per resource.

world.py makes the temporary world and supervises its helpers; helper.py is what every
helper shares (dying with the console, removing the world); pcap, ports, locks and
sessions each drive one resource's activity so every panel has something live to show.
"""
