"""Stream definitions: one short class per endpoint."""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th
from typing_extensions import override

from tap_nationalgas import values
from tap_nationalgas.client import DateWindowStream, NationalGasStream, ResponseError

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    import requests
    from singer_sdk.helpers.types import Context

METRICS = ("cv", "cv24", "sg", "sg24", "wi", "co2", "n2")
GAS_QUALITY_SCHEMA = th.PropertiesList(
    th.Property("site_id", th.IntegerType, required=True, description="National Gas site id"),
    th.Property("site_name", th.StringType),
    th.Property("area_name", th.StringType),
    th.Property("published_time", th.DateTimeType, required=True, description="UTC"),
    th.Property("cv", th.NumberType, description="Calorific value, MJ/m3"),
    th.Property("cv24", th.NumberType, description="24-hour calorific value, MJ/m3"),
    th.Property("sg", th.NumberType, description="Specific gravity (relative density)"),
    th.Property("sg24", th.NumberType, description="24-hour specific gravity"),
    th.Property("wi", th.NumberType, description="Wobbe index, MJ/m3"),
    th.Property("co2", th.NumberType, description="Carbon dioxide, mol %"),
    th.Property("n2", th.NumberType, description="Nitrogen, mol %"),
).to_dict()


class GasQualityMixin(NationalGasStream):
    """Records of gas quality by site, shared by the latest and the historic endpoints."""

    primary_keys = ("site_id", "published_time")
    replication_key = "published_time"
    schema = GAS_QUALITY_SCHEMA

    def gas_quality_record(self, site: dict, detail: dict, published: object) -> dict:
        """One record from a site object and one detail object."""
        site_id = self.number(values.require(site, "siteId", self.endpoint), "siteId")
        return {
            "site_id": int(site_id) if site_id is not None else None,
            "site_name": values.text(site.get("siteName")),
            "area_name": values.text(site.get("areaName")),
            "published_time": self.instant(published, "publishedTime"),
            **{key: self.number(detail.get(key), key) for key in METRICS},
        }

    def wanted(self, site: dict) -> bool:
        """True unless ``site_ids`` is set and leaves this site out."""
        site_ids = self.config.get("site_ids")
        return not site_ids or site.get("siteId") in site_ids


class GasQualityStream(GasQualityMixin):
    """Latest gas quality by site (``GET /gasquality/latestdata``)."""

    name = "gas_quality"
    path = "/gasquality/latestdata"

    @override
    def records_from(self, payload: object) -> Iterable[dict]:
        published = values.require(payload, "publishedTime", self.endpoint)
        for site in values.require(payload, "gasQualityData", self.endpoint):
            if self.wanted(site):
                detail = values.require(site, "siteGasQualityDetail", self.endpoint)
                yield self.gas_quality_record(site, detail, published)


class GasQualityHistoryStream(GasQualityMixin, DateWindowStream):
    """Gas quality history (``POST /gasquality/historicdata``), in windows of a few days."""

    name = "gas_quality_history"
    path = "/gasquality/historicdata"
    is_sorted = True  # each window is sorted below, and windows go forward
    window_days_setting = "history_window_days"

    @override
    def request_filters(self) -> dict[str, t.Any]:
        site_ids = self.config.get("site_ids")
        return {"siteIds": list(site_ids)} if site_ids else {}

    @override
    def records_from(self, payload: object) -> Iterable[dict]:
        if not isinstance(payload, list):
            raise ResponseError(f"{self.endpoint}: expected a list of sites")
        records = [
            self.gas_quality_record(
                site, detail, values.require(detail, "publishedTime", self.endpoint)
            )
            for site in payload
            if self.wanted(site)
            for detail in values.require(site, "siteGasQualityDetail", self.endpoint) or ()
        ]
        yield from sorted(records, key=lambda r: (r["published_time"], r["site_id"]))


class InstantaneousFlowsStream(NationalGasStream):
    """2-minute NTS flows by group and site (``GET /instantaneousflow/sites``)."""

    name = "instantaneous_flows"
    path = "/instantaneousflow/sites"
    primary_keys = ("group", "site_name", "applicable_at")
    replication_key = "applicable_at"
    schema = th.PropertiesList(
        th.Property("group", th.StringType, required=True, description="The block's description"),
        th.Property("site_name", th.StringType, required=True),
        th.Property("applicable_at", th.DateTimeType, required=True, description="UTC"),
        th.Property("flow_rate", th.NumberType, description="mcm/d; linepack in mcm"),
        th.Property("quality_indicator", th.StringType),
        th.Property("schedule_time", th.DateTimeType),
        th.Property("published_time", th.DateTimeType),
        th.Property("gas_day", th.DateType, description="05:00 to 05:00 Europe/London"),
    ).to_dict()

    @override
    def records_from(self, payload: object) -> Iterable[dict]:
        published = values.instant(values.require(payload, "publishedTime", self.endpoint))
        records = []
        for group in values.require(payload, "instantaneousFlow", self.endpoint) or ():
            description = values.text(values.require(group, "description", self.endpoint))
            for site in values.require(group, "sites", self.endpoint) or ():
                site_name = values.text(values.require(site, "siteName", self.endpoint))
                for reading in values.require(site, "siteGasDetail", self.endpoint) or ():
                    applicable_at = self.instant(reading.get("applicableAt"), "applicableAt")
                    records.append(
                        {
                            "group": description,
                            "site_name": site_name,
                            "applicable_at": applicable_at,
                            "flow_rate": self.number(reading.get("flowRate"), "flowRate"),
                            "quality_indicator": values.text(reading.get("qualityIndicator")),
                            "schedule_time": values.instant(reading.get("scheduleTime")),
                            "published_time": published,
                            "gas_day": values.gas_day(applicable_at),
                        }
                    )
        yield from sorted(records, key=lambda r: (r["applicable_at"], r["group"], r["site_name"]))


class PublicationsStream(DateWindowStream):
    """Values of the data items in ``publication_ids`` (``POST /publications/gasday``)."""

    name = "publications"
    path = "/publications/gasday"
    primary_keys = ("publication_id", "applicable_at")
    replication_key = "generated_time"
    schema = th.PropertiesList(
        th.Property("publication_id", th.StringType, required=True),
        th.Property("publication_name", th.StringType),
        th.Property("applicable_at", th.DateTimeType, required=True, description="UTC"),
        th.Property("applicable_for", th.DateType, description="The gas day"),
        th.Property("value", th.NumberType),
        th.Property("quality_indicator", th.StringType, description="L, A, C, E, S or null"),
        th.Property("generated_time", th.DateTimeType, required=True, description="UTC"),
    ).to_dict()

    window_days_setting = "publication_window_days"
    lookback_days_setting = "lookback_days"

    @override
    def request_filters(self) -> dict[str, t.Any]:
        return {"publicationIds": list(self.config["publication_ids"]), "latestValue": "Y"}

    @override
    def get_records(self, context: Context | None) -> Iterable[dict]:
        if not self.config["publication_ids"]:
            self.logger.info("`publication_ids` is empty: no publications are read")
            return
        yield from super().get_records(context)

    @override
    def validate_response(self, response: requests.Response) -> None:
        if response.status_code == 400:  # noqa: PLR2004
            raise ResponseError(self._rejected_ids_message())
        super().validate_response(response)

    def _rejected_ids_message(self) -> str:
        requested = list(self.config["publication_ids"])
        try:
            catalogue = self.requests_session.get(
                f"{self.url_base}/publications/catalogue",
                headers=self.http_headers,
                timeout=self.timeout,
            )
            known = {e["publication_id"] for e in catalogue_entries(catalogue.json())}
            unknown = [i for i in requested if i not in known] or requested
        except (ValueError, KeyError, TypeError, OSError):
            unknown = requested
        return (
            f"{self.endpoint} answered 400 for publication ids {', '.join(unknown)}: they are not "
            "in the National Gas catalogue; check the setting `publication_ids`"
        )

    @override
    def records_from(self, payload: object) -> Iterable[dict]:
        items = payload.get("data", payload) if isinstance(payload, dict) else payload
        if not isinstance(items, list):
            raise ResponseError(f"{self.endpoint}: expected a list of publications")
        for item in items:
            publication_id = values.text(values.require(item, "publicationId", self.endpoint))
            for row in values.require(item, "publications", self.endpoint) or ():
                applicable_at = self.instant(row.get("applicableAt"), "applicableAt")
                yield {
                    "publication_id": publication_id,
                    "publication_name": values.text(
                        row.get("publicationName") or item.get("publicationName")
                    ),
                    "applicable_at": applicable_at,
                    "applicable_for": values.day(row.get("applicableFor"))
                    or values.gas_day(applicable_at),
                    "value": self.number(row.get("value"), "value"),
                    "quality_indicator": values.text(row.get("qualityIndicator")),
                    "generated_time": self.instant(
                        row.get("generatedTimeStamp"), "generatedTimeStamp"
                    ),
                }


def catalogue_entries(payload: object) -> Iterable[dict]:
    """Flatten the catalogue's categories, sub-categories and entries."""
    for category in values.require(payload, "data", "/publications/catalogue") or ():
        for sub in category.get("subCategory") or ():
            for entry in sub.get("catalogueEntries") or ():
                yield {
                    "publication_id": values.text(
                        values.require(entry, "publicationId", "/publications/catalogue"),
                    ),
                    "name": values.text(entry.get("name")),
                    "category": values.text(category.get("name")),
                    "sub_category": values.text(sub.get("name")),
                }


class PublicationCatalogueStream(NationalGasStream):
    """The data items the API publishes (``GET /publications/catalogue``); full table."""

    name = "publication_catalogue"
    path = "/publications/catalogue"
    primary_keys = ("publication_id",)
    replication_key = None
    schema = th.PropertiesList(
        th.Property("publication_id", th.StringType, required=True),
        th.Property("name", th.StringType),
        th.Property("category", th.StringType),
        th.Property("sub_category", th.StringType),
    ).to_dict()

    @override
    def records_from(self, payload: object) -> Iterable[dict]:
        yield from catalogue_entries(payload)
