"""The appliance: what an installer runs on the warehouse box (issue 15).

In: the config tree, the data directory, the running gateway's API, the box itself (systemd,
disks, clocks, devices). Out: an installed service (``install``), a report of everything an
installer gets wrong with the fix for each (``doctor``), consistent backups of the live store
and their restore (``backup``).

Each command has its own module and its CLI entry (``gateway/_<name>_cli.py``).
"""

from gateway._appliance.backup import backup_store, restore_store
from gateway._appliance.doctor import run_doctor
from gateway._appliance.install import InstallOptions, install, uninstall
from gateway._appliance.logs import configure_logging
from gateway._appliance.repair import repair_store, verify_store

__all__ = ["InstallOptions", "backup_store", "configure_logging", "install", "repair_store", "restore_store",
           "run_doctor", "uninstall", "verify_store"]
