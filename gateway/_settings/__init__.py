"""Settings: ``gateway.toml`` loaded, typed and validated.

In: a ``gateway.toml`` path (and its environment, for ``*_env`` secrets).
Out: one frozen ``Settings`` value with every section defaulted; a bad file is refused with a
``ConfigError`` naming file, line and key.

Parts: ``toml`` (a TOML document that remembers where each key stands, strict key checks;
the rule files use it too), ``model`` (the sections as frozen dataclasses, ``Secret``),
``fields`` (typed reading of values; secrets from ``*_env`` / ``*_file``), ``stations``
(``[stations.*]``, ``[nvrs.*]``: pack stations and their devices), ``packline``
(``[packline]``, ``[alerts]``: the pack line and its alerts), ``tenants``
(``[tenants.NAME.SOURCE]``: secrets, allow-lists, app keys, the shared Pinduoduo
WebSocket's shop routing), ``loader`` (reading,
validating, the key reference in its docstring).
"""

from gateway._settings.loader import default_config_path, load_settings, parse_settings, with_overrides
from gateway._settings.model import (
    TENANT_NAME,
    AlertsSection,
    ApiSection,
    DemoSection,
    GatewaySection,
    HttpSection,
    PackLineSection,
    PipelineSection,
    Secret,
    Settings,
    SourceCredentials,
    StoreSection,
    UpstreamSection,
)
from gateway._settings.stations import (
    NvrSection,
    PrinterSection,
    ScaleSection,
    ScannerSection,
    StationSection,
)
from gateway._settings.toml import KeyPath, TomlDocument, check_keys

__all__ = [
    "TENANT_NAME",
    "AlertsSection",
    "ApiSection",
    "DemoSection",
    "GatewaySection",
    "HttpSection",
    "KeyPath",
    "NvrSection",
    "PackLineSection",
    "PipelineSection",
    "PrinterSection",
    "ScaleSection",
    "ScannerSection",
    "Secret",
    "Settings",
    "SourceCredentials",
    "StationSection",
    "StoreSection",
    "TomlDocument",
    "UpstreamSection",
    "check_keys",
    "default_config_path",
    "load_settings",
    "parse_settings",
    "with_overrides",
]
