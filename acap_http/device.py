"""What this host says of itself as a device, where VAPIX clients ask a camera: basic device
information (``basicdeviceinfo.cgi``) and the read-only parameter groups a client reads when it
opens a device (``root.Brand``, ``root.Properties``: the application API is there when
``Properties.EmbeddedDevelopment.Version`` is 1.20 or later). acap-http is no camera: these say
so (``ProdNbr`` acap-http), and everything a camera has beyond them answers 404.
"""

from __future__ import annotations

import hashlib
import platform
import socket
from dataclasses import dataclass
from pathlib import Path

from acap_http import identity
from acap_http.manifest import Manifest

MACHINE_ID = Path("/etc/machine-id")
PRODUCT = "acap-http"
# The Application API version whose list.cgi and control.cgi acap-http answers as a camera does.
EMBEDDED_DEVELOPMENT = "3.0"


@dataclass(frozen=True)
class Identity:
    serial: str  # twelve hex digits, as a camera's MAC-based serial is; stable for this host
    version: str
    architecture: str
    hostname: str

    @classmethod
    def of_host(cls, machine_id: Path = MACHINE_ID) -> Identity:
        try:
            seed = machine_id.read_bytes().strip()
        except OSError:
            seed = socket.gethostname().encode()
        serial = hashlib.sha256(b"acap-http serial " + seed).hexdigest()[:12].upper()
        return cls(serial, identity.VERSION, platform.machine(), socket.gethostname())

    @property
    def model(self) -> str:
        return PRODUCT

    def properties(self) -> dict[str, str]:
        """basicdeviceinfo.cgi's propertyList: every property, unrestricted or not."""
        return {
            "Architecture": self.architecture,
            "Brand": PRODUCT,
            "BuildDate": "",
            "HardwareID": "",
            "ProdFullName": "acap-http, the Docker ACAP application on a Linux host",
            "ProdNbr": PRODUCT,
            "ProdShortName": PRODUCT,
            "ProdType": "Docker host",
            "ProdVariant": "",
            "SerialNumber": self.serial,
            "Soc": "",
            "SocSerialNumber": "",
            "Version": self.version,
            "WebURL": "",
        }

    def unrestricted(self) -> dict[str, str]:
        """What a camera tells anyone (getAllUnrestrictedProperties): no serial number."""
        shown = ("Brand", "BuildDate", "HardwareID", "ProdFullName", "ProdNbr", "ProdShortName", "ProdType",
                 "ProdVariant", "SerialNumber", "Version", "WebURL")  # fmt: skip
        return {name: value for name, value in self.properties().items() if name in shown}


def parameter_groups(device: Identity) -> dict[str, dict[str, str]]:
    """The device's read-only parameter groups, by group: {"Brand": {"ProdNbr": …}, …}; nested
    parameters are dotted (``API.HTTP.Version``), as param.cgi lists them."""
    properties = device.properties()
    return {
        "Brand": {
            "Brand": properties["Brand"],
            "ProdFullName": properties["ProdFullName"],
            "ProdNbr": properties["ProdNbr"],
            "ProdShortName": properties["ProdShortName"],
            "ProdType": properties["ProdType"],
            "ProdVariant": "",
            "WebURL": "",
        },
        "Properties": {
            "API.HTTP.AdminPath": "/",
            "API.HTTP.Version": "3",
            "API.Metadata.Metadata": "no",
            "API.Metadata.Version": "1.0",
            "EmbeddedDevelopment.EmbeddedDevelopment": "yes",
            "EmbeddedDevelopment.Version": EMBEDDED_DEVELOPMENT,
            "Firmware.BuildDate": "",
            "Firmware.BuildNumber": "",
            "Firmware.Version": device.version,
            "System.Architecture": device.architecture,
            "System.HardwareID": "",
            "System.Language": "English",
            "System.LanguageType": "default",
            "System.SerialNumber": device.serial,
            "System.Soc": "",
        },
    }


def app_list_entry(manifest: Manifest, running: bool) -> dict[str, str]:
    """list.cgi's attributes for the application, in the order a camera gives them."""
    return {
        "Name": manifest.app_name,
        "NiceName": manifest.friendly_name,
        "Vendor": manifest.vendor,
        "Version": manifest.version,
        "License": "None",
        "Status": "Running" if running else "Stopped",
        "ConfigurationPage": f"local/{manifest.app_name}/",
    }
