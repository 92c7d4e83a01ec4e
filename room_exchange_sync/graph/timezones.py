"""Windows time-zone names (as Exchange and Graph use them) and IANA zones.

Graph documents Windows names in ``start``/``end`` (``"W. Europe Standard Time"``);
whether it also accepts IANA names is unconfirmed
(docs/graph.md#times-and-time-zones), so the addon writes Windows names and reads both.

Public API:

- ``WINDOWS_ZONES``: Windows zone id -> its IANA zones, the first being CLDR
  windowsZones' territory "001" zone, the others the zones of the other territories;
- ``windows_zone(iana) -> str``: the Windows zone id of an IANA zone (ValueError when
  unknown);
- ``to_zoneinfo(name) -> ZoneInfo``: a Windows (case-insensitive) or IANA name as a
  ``ZoneInfo`` (ValueError when unknown);
- ``is_windows_zone(name) -> bool``.
"""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# CLDR common/supplemental/windowsZones.xml, with tzdata's current names (Asia/Kolkata,
# Europe/Kyiv, ...) in place of CLDR's stable ids; those old ids are in _ALIASES.
# Kazakhstan moved to UTC+5 in 2024, so Asia/Almaty and Asia/Qostanay sit with the other
# UTC+5 zones and "Central Asia Standard Time" keeps Bishkek, which did not change;
# Antarctica/Vostok (UTC+5 since 2023) and Antarctica/Casey (UTC+8) follow tzdata too.
WINDOWS_ZONES: dict[str, tuple[str, ...]] = {
    name: tuple(zones.split())
    for name, zones in (
        ("Dateline Standard Time", "Etc/GMT+12"),
        ("UTC-11", "Etc/GMT+11 Pacific/Pago_Pago Pacific/Niue Pacific/Midway"),
        ("Aleutian Standard Time", "America/Adak"),
        ("Hawaiian Standard Time", "Pacific/Honolulu Pacific/Rarotonga Pacific/Tahiti"),
        ("Marquesas Standard Time", "Pacific/Marquesas"),
        (
            "Alaskan Standard Time",
            "America/Anchorage America/Juneau America/Metlakatla America/Nome "
            "America/Sitka America/Yakutat",
        ),
        ("UTC-09", "Etc/GMT+9 Pacific/Gambier"),
        ("Pacific Standard Time (Mexico)", "America/Tijuana America/Santa_Isabel"),
        ("UTC-08", "Etc/GMT+8 Pacific/Pitcairn"),
        ("Pacific Standard Time", "America/Los_Angeles America/Vancouver PST8PDT"),
        (
            "US Mountain Standard Time",
            "America/Phoenix America/Creston America/Dawson_Creek "
            "America/Fort_Nelson America/Hermosillo Etc/GMT+7",
        ),
        ("Mountain Standard Time (Mexico)", "America/Mazatlan"),
        (
            "Mountain Standard Time",
            "America/Denver America/Edmonton America/Cambridge_Bay America/Inuvik "
            "America/Yellowknife America/Ciudad_Juarez America/Boise MST7MDT",
        ),
        ("Yukon Standard Time", "America/Whitehorse America/Dawson"),
        (
            "Central America Standard Time",
            "America/Guatemala America/Belize America/Costa_Rica Pacific/Galapagos "
            "America/Tegucigalpa America/Managua America/El_Salvador Etc/GMT+6",
        ),
        (
            "Central Standard Time",
            "America/Chicago America/Winnipeg America/Rainy_River "
            "America/Rankin_Inlet America/Resolute America/Matamoros America/Ojinaga "
            "America/Indiana/Knox America/Indiana/Tell_City America/Menominee "
            "America/North_Dakota/Beulah America/North_Dakota/Center "
            "America/North_Dakota/New_Salem CST6CDT",
        ),
        ("Easter Island Standard Time", "Pacific/Easter"),
        (
            "Central Standard Time (Mexico)",
            "America/Mexico_City America/Bahia_Banderas America/Merida "
            "America/Monterrey America/Chihuahua",
        ),
        ("Canada Central Standard Time", "America/Regina America/Swift_Current"),
        (
            "SA Pacific Standard Time",
            "America/Bogota America/Rio_Branco America/Eirunepe America/Atikokan "
            "America/Guayaquil America/Jamaica America/Cayman America/Panama "
            "America/Lima Etc/GMT+5",
        ),
        ("Eastern Standard Time (Mexico)", "America/Cancun"),
        (
            "Eastern Standard Time",
            "America/New_York America/Nassau America/Toronto America/Iqaluit "
            "America/Montreal America/Nipigon America/Pangnirtung "
            "America/Thunder_Bay America/Detroit America/Indiana/Petersburg "
            "America/Indiana/Vincennes America/Indiana/Winamac "
            "America/Kentucky/Monticello America/Kentucky/Louisville EST5EDT",
        ),
        ("Haiti Standard Time", "America/Port-au-Prince"),
        ("Cuba Standard Time", "America/Havana"),
        (
            "US Eastern Standard Time",
            "America/Indiana/Indianapolis America/Indiana/Marengo "
            "America/Indiana/Vevay",
        ),
        ("Turks And Caicos Standard Time", "America/Grand_Turk"),
        ("Paraguay Standard Time", "America/Asuncion"),
        (
            "Atlantic Standard Time",
            "America/Halifax Atlantic/Bermuda America/Glace_Bay America/Goose_Bay "
            "America/Moncton America/Thule",
        ),
        ("Venezuela Standard Time", "America/Caracas"),
        ("Central Brazilian Standard Time", "America/Cuiaba America/Campo_Grande"),
        (
            "SA Western Standard Time",
            "America/La_Paz America/Antigua America/Anguilla America/Aruba "
            "America/Barbados America/St_Barthelemy America/Kralendijk "
            "America/Manaus America/Boa_Vista America/Porto_Velho "
            "America/Blanc-Sablon America/Curacao America/Dominica "
            "America/Santo_Domingo America/Grenada America/Guadeloupe "
            "America/Guyana America/St_Kitts America/St_Lucia America/Marigot "
            "America/Martinique America/Montserrat America/Puerto_Rico "
            "America/Lower_Princes America/Port_of_Spain America/St_Vincent "
            "America/Tortola America/St_Thomas Etc/GMT+4",
        ),
        ("Pacific SA Standard Time", "America/Santiago"),
        ("Newfoundland Standard Time", "America/St_Johns"),
        ("Tocantins Standard Time", "America/Araguaina"),
        ("E. South America Standard Time", "America/Sao_Paulo"),
        (
            "SA Eastern Standard Time",
            "America/Cayenne Antarctica/Rothera Antarctica/Palmer America/Fortaleza "
            "America/Belem America/Maceio America/Recife America/Santarem "
            "Atlantic/Stanley America/Paramaribo Etc/GMT+3",
        ),
        (
            "Argentina Standard Time",
            "America/Argentina/Buenos_Aires America/Argentina/La_Rioja "
            "America/Argentina/Rio_Gallegos America/Argentina/Salta "
            "America/Argentina/San_Juan America/Argentina/San_Luis "
            "America/Argentina/Tucuman America/Argentina/Ushuaia "
            "America/Argentina/Catamarca America/Argentina/Cordoba "
            "America/Argentina/Jujuy America/Argentina/Mendoza",
        ),
        ("Greenland Standard Time", "America/Nuuk America/Scoresbysund"),
        ("Montevideo Standard Time", "America/Montevideo"),
        ("Magallanes Standard Time", "America/Punta_Arenas America/Coyhaique"),
        ("Saint Pierre Standard Time", "America/Miquelon"),
        ("Bahia Standard Time", "America/Bahia"),
        ("UTC-02", "Etc/GMT+2 America/Noronha Atlantic/South_Georgia"),
        ("Azores Standard Time", "Atlantic/Azores"),
        ("Cape Verde Standard Time", "Atlantic/Cape_Verde Etc/GMT+1"),
        ("UTC", "Etc/UTC America/Danmarkshavn Etc/GMT"),
        (
            "GMT Standard Time",
            "Europe/London Atlantic/Canary Atlantic/Faroe Europe/Guernsey "
            "Europe/Dublin Europe/Isle_of_Man Europe/Jersey Europe/Lisbon "
            "Atlantic/Madeira",
        ),
        (
            "Greenwich Standard Time",
            "Atlantic/Reykjavik Africa/Ouagadougou Africa/Abidjan Africa/Accra "
            "Africa/Banjul Africa/Conakry Africa/Bissau Africa/Monrovia "
            "Africa/Bamako Africa/Nouakchott Atlantic/St_Helena Africa/Freetown "
            "Africa/Dakar Africa/Lome",
        ),
        ("Sao Tome Standard Time", "Africa/Sao_Tome"),
        ("Morocco Standard Time", "Africa/Casablanca Africa/El_Aaiun"),
        (
            "W. Europe Standard Time",
            "Europe/Berlin Europe/Andorra Europe/Vienna Europe/Zurich "
            "Europe/Busingen Europe/Gibraltar Europe/Rome Europe/Vaduz "
            "Europe/Luxembourg Europe/Monaco Europe/Malta Europe/Amsterdam "
            "Europe/Oslo Europe/Stockholm Arctic/Longyearbyen Europe/San_Marino "
            "Europe/Vatican",
        ),
        (
            "Central Europe Standard Time",
            "Europe/Budapest Europe/Tirane Europe/Prague Europe/Podgorica "
            "Europe/Belgrade Europe/Ljubljana Europe/Bratislava",
        ),
        (
            "Romance Standard Time",
            "Europe/Paris Europe/Brussels Europe/Copenhagen Europe/Madrid Africa/Ceuta",
        ),
        (
            "Central European Standard Time",
            "Europe/Warsaw Europe/Sarajevo Europe/Zagreb Europe/Skopje",
        ),
        (
            "W. Central Africa Standard Time",
            "Africa/Lagos Africa/Luanda Africa/Porto-Novo Africa/Kinshasa "
            "Africa/Bangui Africa/Brazzaville Africa/Douala Africa/Algiers "
            "Africa/Libreville Africa/Malabo Africa/Niamey Africa/Ndjamena "
            "Africa/Tunis Etc/GMT-1",
        ),
        ("Jordan Standard Time", "Asia/Amman"),
        (
            "GTB Standard Time",
            "Europe/Bucharest Asia/Nicosia Asia/Famagusta Europe/Athens",
        ),
        ("Middle East Standard Time", "Asia/Beirut"),
        ("Egypt Standard Time", "Africa/Cairo"),
        ("E. Europe Standard Time", "Europe/Chisinau"),
        ("Syria Standard Time", "Asia/Damascus"),
        ("West Bank Standard Time", "Asia/Hebron Asia/Gaza"),
        (
            "South Africa Standard Time",
            "Africa/Johannesburg Africa/Bujumbura Africa/Gaborone "
            "Africa/Lubumbashi Africa/Maseru Africa/Blantyre Africa/Maputo "
            "Africa/Kigali Africa/Mbabane Africa/Lusaka Africa/Harare Etc/GMT-2",
        ),
        (
            "FLE Standard Time",
            "Europe/Kyiv Europe/Mariehamn Europe/Sofia Europe/Tallinn "
            "Europe/Helsinki Europe/Vilnius Europe/Riga Europe/Uzhgorod "
            "Europe/Zaporozhye",
        ),
        ("Israel Standard Time", "Asia/Jerusalem"),
        ("South Sudan Standard Time", "Africa/Juba"),
        ("Kaliningrad Standard Time", "Europe/Kaliningrad"),
        ("Sudan Standard Time", "Africa/Khartoum"),
        ("Libya Standard Time", "Africa/Tripoli"),
        ("Namibia Standard Time", "Africa/Windhoek"),
        ("Arabic Standard Time", "Asia/Baghdad"),
        ("Turkey Standard Time", "Europe/Istanbul"),
        (
            "Arab Standard Time",
            "Asia/Riyadh Asia/Bahrain Asia/Kuwait Asia/Qatar Asia/Aden",
        ),
        ("Belarus Standard Time", "Europe/Minsk"),
        (
            "Russian Standard Time",
            "Europe/Moscow Europe/Kirov Europe/Simferopol",
        ),
        (
            "E. Africa Standard Time",
            "Africa/Nairobi Antarctica/Syowa Africa/Djibouti Africa/Asmara "
            "Africa/Addis_Ababa Indian/Comoro Indian/Antananarivo Africa/Mogadishu "
            "Africa/Dar_es_Salaam Africa/Kampala Indian/Mayotte Etc/GMT-3",
        ),
        ("Volgograd Standard Time", "Europe/Volgograd"),
        ("Iran Standard Time", "Asia/Tehran"),
        ("Arabian Standard Time", "Asia/Dubai Asia/Muscat Etc/GMT-4"),
        ("Astrakhan Standard Time", "Europe/Astrakhan Europe/Ulyanovsk"),
        ("Azerbaijan Standard Time", "Asia/Baku"),
        ("Russia Time Zone 3", "Europe/Samara"),
        ("Mauritius Standard Time", "Indian/Mauritius Indian/Reunion Indian/Mahe"),
        ("Saratov Standard Time", "Europe/Saratov"),
        ("Georgian Standard Time", "Asia/Tbilisi"),
        ("Caucasus Standard Time", "Asia/Yerevan"),
        ("Afghanistan Standard Time", "Asia/Kabul"),
        (
            "West Asia Standard Time",
            "Asia/Tashkent Antarctica/Mawson Antarctica/Vostok Asia/Oral Asia/Aqtau "
            "Asia/Aqtobe "
            "Asia/Atyrau Asia/Almaty Asia/Qostanay Indian/Maldives "
            "Indian/Kerguelen Asia/Dushanbe Asia/Ashgabat Asia/Samarkand Etc/GMT-5",
        ),
        ("Ekaterinburg Standard Time", "Asia/Yekaterinburg"),
        ("Pakistan Standard Time", "Asia/Karachi"),
        ("Qyzylorda Standard Time", "Asia/Qyzylorda"),
        ("India Standard Time", "Asia/Kolkata"),
        ("Sri Lanka Standard Time", "Asia/Colombo"),
        ("Nepal Standard Time", "Asia/Kathmandu"),
        (
            "Central Asia Standard Time",
            "Asia/Bishkek Asia/Urumqi Indian/Chagos Etc/GMT-6",
        ),
        ("Bangladesh Standard Time", "Asia/Dhaka Asia/Thimphu"),
        ("Omsk Standard Time", "Asia/Omsk"),
        ("Myanmar Standard Time", "Asia/Yangon Indian/Cocos"),
        (
            "SE Asia Standard Time",
            "Asia/Bangkok Antarctica/Davis Indian/Christmas Asia/Jakarta "
            "Asia/Pontianak Asia/Phnom_Penh Asia/Vientiane Asia/Ho_Chi_Minh "
            "Etc/GMT-7",
        ),
        ("Altai Standard Time", "Asia/Barnaul"),
        ("W. Mongolia Standard Time", "Asia/Hovd"),
        ("North Asia Standard Time", "Asia/Krasnoyarsk Asia/Novokuznetsk"),
        ("N. Central Asia Standard Time", "Asia/Novosibirsk"),
        ("Tomsk Standard Time", "Asia/Tomsk"),
        ("China Standard Time", "Asia/Shanghai Asia/Hong_Kong Asia/Macau"),
        ("North Asia East Standard Time", "Asia/Irkutsk"),
        (
            "Singapore Standard Time",
            "Asia/Singapore Asia/Brunei Asia/Makassar Asia/Kuala_Lumpur "
            "Asia/Kuching Asia/Manila Antarctica/Casey Etc/GMT-8",
        ),
        ("W. Australia Standard Time", "Australia/Perth"),
        ("Taipei Standard Time", "Asia/Taipei"),
        ("Ulaanbaatar Standard Time", "Asia/Ulaanbaatar Asia/Choibalsan"),
        ("Aus Central W. Standard Time", "Australia/Eucla"),
        ("Transbaikal Standard Time", "Asia/Chita"),
        (
            "Tokyo Standard Time",
            "Asia/Tokyo Asia/Jayapura Pacific/Palau Asia/Dili Etc/GMT-9",
        ),
        ("North Korea Standard Time", "Asia/Pyongyang"),
        ("Korea Standard Time", "Asia/Seoul"),
        ("Yakutsk Standard Time", "Asia/Yakutsk Asia/Khandyga"),
        ("Cen. Australia Standard Time", "Australia/Adelaide Australia/Broken_Hill"),
        ("AUS Central Standard Time", "Australia/Darwin"),
        ("E. Australia Standard Time", "Australia/Brisbane Australia/Lindeman"),
        ("AUS Eastern Standard Time", "Australia/Sydney Australia/Melbourne"),
        (
            "West Pacific Standard Time",
            "Pacific/Port_Moresby Antarctica/DumontDUrville Pacific/Chuuk "
            "Pacific/Guam Pacific/Saipan Etc/GMT-10",
        ),
        ("Tasmania Standard Time", "Australia/Hobart Antarctica/Macquarie"),
        ("Vladivostok Standard Time", "Asia/Vladivostok Asia/Ust-Nera"),
        ("Lord Howe Standard Time", "Australia/Lord_Howe"),
        ("Bougainville Standard Time", "Pacific/Bougainville"),
        ("Russia Time Zone 10", "Asia/Srednekolymsk"),
        ("Magadan Standard Time", "Asia/Magadan"),
        ("Norfolk Standard Time", "Pacific/Norfolk"),
        ("Sakhalin Standard Time", "Asia/Sakhalin"),
        (
            "Central Pacific Standard Time",
            "Pacific/Guadalcanal Pacific/Pohnpei Pacific/Kosrae "
            "Pacific/Noumea Pacific/Efate Etc/GMT-11",
        ),
        ("Russia Time Zone 11", "Asia/Kamchatka Asia/Anadyr"),
        ("New Zealand Standard Time", "Pacific/Auckland Antarctica/McMurdo"),
        (
            "UTC+12",
            "Etc/GMT-12 Pacific/Tarawa Pacific/Majuro Pacific/Kwajalein "
            "Pacific/Nauru Pacific/Funafuti Pacific/Wake Pacific/Wallis",
        ),
        ("Fiji Standard Time", "Pacific/Fiji"),
        ("Chatham Islands Standard Time", "Pacific/Chatham"),
        ("UTC+13", "Etc/GMT-13 Pacific/Kanton Pacific/Fakaofo"),
        ("Tonga Standard Time", "Pacific/Tongatapu"),
        ("Samoa Standard Time", "Pacific/Apia"),
        ("Line Islands Standard Time", "Pacific/Kiritimati Etc/GMT-14"),
    )
}

# Older or alternative IANA names (tzdata "backward" links, CLDR's stable ids) -> the
# name used in WINDOWS_ZONES.
_ALIASES: dict[str, str] = {
    "UTC": "Etc/UTC",
    "Etc/UCT": "Etc/UTC",
    "Etc/Universal": "Etc/UTC",
    "Etc/Zulu": "Etc/UTC",
    "Etc/GMT+0": "Etc/GMT",
    "Etc/GMT-0": "Etc/GMT",
    "Etc/GMT0": "Etc/GMT",
    "Etc/Greenwich": "Etc/GMT",
    "GMT": "Etc/GMT",
    "Asia/Calcutta": "Asia/Kolkata",
    "Asia/Katmandu": "Asia/Kathmandu",
    "Asia/Rangoon": "Asia/Yangon",
    "Asia/Saigon": "Asia/Ho_Chi_Minh",
    "Asia/Ulan_Bator": "Asia/Ulaanbaatar",
    "Asia/Macao": "Asia/Macau",
    "Europe/Kiev": "Europe/Kyiv",
    "Europe/Belfast": "Europe/London",
    "Africa/Asmera": "Africa/Asmara",
    "Atlantic/Faeroe": "Atlantic/Faroe",
    "Pacific/Truk": "Pacific/Chuuk",
    "Pacific/Ponape": "Pacific/Pohnpei",
    "Pacific/Enderbury": "Pacific/Kanton",
    "America/Godthab": "America/Nuuk",
    "America/Indianapolis": "America/Indiana/Indianapolis",
    "America/Louisville": "America/Kentucky/Louisville",
    "America/Coral_Harbour": "America/Atikokan",
    "America/Buenos_Aires": "America/Argentina/Buenos_Aires",
    "America/Catamarca": "America/Argentina/Catamarca",
    "America/Cordoba": "America/Argentina/Cordoba",
    "America/Jujuy": "America/Argentina/Jujuy",
    "America/Mendoza": "America/Argentina/Mendoza",
    "Australia/Canberra": "Australia/Sydney",
    "Australia/ACT": "Australia/Sydney",
    "Australia/NSW": "Australia/Sydney",
    "Australia/Victoria": "Australia/Melbourne",
    "Australia/Queensland": "Australia/Brisbane",
    "Australia/West": "Australia/Perth",
    "Australia/South": "Australia/Adelaide",
    "Australia/North": "Australia/Darwin",
    "Australia/Tasmania": "Australia/Hobart",
    "Australia/Currie": "Australia/Hobart",
    "US/Eastern": "America/New_York",
    "US/Central": "America/Chicago",
    "US/Mountain": "America/Denver",
    "US/Pacific": "America/Los_Angeles",
    "US/Alaska": "America/Anchorage",
    "US/Hawaii": "Pacific/Honolulu",
    "US/Arizona": "America/Phoenix",
    "Canada/Eastern": "America/Toronto",
    "Canada/Central": "America/Winnipeg",
    "Canada/Mountain": "America/Edmonton",
    "Canada/Pacific": "America/Vancouver",
    "Canada/Atlantic": "America/Halifax",
    "Canada/Newfoundland": "America/St_Johns",
    "GB": "Europe/London",
    "Eire": "Europe/Dublin",
    "Portugal": "Europe/Lisbon",
    "Poland": "Europe/Warsaw",
    "Turkey": "Europe/Istanbul",
    "Israel": "Asia/Jerusalem",
    "Japan": "Asia/Tokyo",
    "ROK": "Asia/Seoul",
    "PRC": "Asia/Shanghai",
    "ROC": "Asia/Taipei",
    "Singapore": "Asia/Singapore",
    "Hongkong": "Asia/Hong_Kong",
    "Iran": "Asia/Tehran",
    "Egypt": "Africa/Cairo",
    "NZ": "Pacific/Auckland",
    "Brazil/East": "America/Sao_Paulo",
    "Mexico/General": "America/Mexico_City",
    "Chile/Continental": "America/Santiago",
    "Africa/Timbuktu": "Africa/Bamako",
    "America/Argentina/ComodRivadavia": "America/Argentina/Catamarca",
    "America/Atka": "America/Adak",
    "America/Ensenada": "America/Tijuana",
    "America/Fort_Wayne": "America/Indiana/Indianapolis",
    "America/Knox_IN": "America/Indiana/Knox",
    "America/Porto_Acre": "America/Rio_Branco",
    "America/Rosario": "America/Argentina/Cordoba",
    "America/Shiprock": "America/Denver",
    "America/Virgin": "America/St_Thomas",
    "Antarctica/South_Pole": "Antarctica/McMurdo",
    "Asia/Ashkhabad": "Asia/Ashgabat",
    "Asia/Chongqing": "Asia/Shanghai",
    "Asia/Chungking": "Asia/Shanghai",
    "Asia/Dacca": "Asia/Dhaka",
    "Asia/Harbin": "Asia/Shanghai",
    "Asia/Istanbul": "Europe/Istanbul",
    "Asia/Kashgar": "Asia/Urumqi",
    "Asia/Tel_Aviv": "Asia/Jerusalem",
    "Asia/Thimbu": "Asia/Thimphu",
    "Asia/Ujung_Pandang": "Asia/Makassar",
    "Atlantic/Jan_Mayen": "Arctic/Longyearbyen",
    "Australia/LHI": "Australia/Lord_Howe",
    "Australia/Yancowinna": "Australia/Broken_Hill",
    "Brazil/Acre": "America/Rio_Branco",
    "Brazil/DeNoronha": "America/Noronha",
    "Brazil/West": "America/Manaus",
    "Canada/Saskatchewan": "America/Regina",
    "Canada/Yukon": "America/Whitehorse",
    "Chile/EasterIsland": "Pacific/Easter",
    "Europe/Nicosia": "Asia/Nicosia",
    "Europe/Tiraspol": "Europe/Chisinau",
    "Mexico/BajaNorte": "America/Tijuana",
    "Mexico/BajaSur": "America/Mazatlan",
    "Pacific/Johnston": "Pacific/Honolulu",
    "Pacific/Samoa": "Pacific/Pago_Pago",
    "Pacific/Yap": "Pacific/Chuuk",
    "US/Aleutian": "America/Adak",
    "US/East-Indiana": "America/Indiana/Indianapolis",
    "US/Indiana-Starke": "America/Indiana/Knox",
    "US/Michigan": "America/Detroit",
    "US/Samoa": "Pacific/Pago_Pago",
}

_WINDOWS_BY_FOLDED: dict[str, str] = {name.casefold(): name for name in WINDOWS_ZONES}
_IANA_TO_WINDOWS: dict[str, str] = {
    iana: windows for windows, zones in WINDOWS_ZONES.items() for iana in zones
}


def is_windows_zone(name: str) -> bool:
    """True when ``name`` is a Windows zone id of ``WINDOWS_ZONES`` (any case)."""
    return isinstance(name, str) and name.casefold() in _WINDOWS_BY_FOLDED


def windows_zone(iana: str) -> str:
    """Return the Windows zone id Exchange uses for the IANA zone ``iana``.

    A Windows id is returned as is (with its canonical spelling).

    Raises:
        ValueError: ``iana`` is not a zone of the table (nor one of its aliases).
    """
    if not isinstance(iana, str):
        raise ValueError(f"not a time zone name: {iana!r}")
    windows = _IANA_TO_WINDOWS.get(_ALIASES.get(iana, iana))
    if windows is None:
        windows = _WINDOWS_BY_FOLDED.get(iana.casefold())
    if windows is None:
        raise ValueError(f"no Windows time zone for {iana!r}")
    return windows


def to_zoneinfo(name: str) -> ZoneInfo:
    """Return the zone of a Windows zone id (any case) or of an IANA name.

    Raises:
        ValueError: ``name`` is neither.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"not a time zone name: {name!r}")
    windows = _WINDOWS_BY_FOLDED.get(name.casefold())
    key = WINDOWS_ZONES[windows][0] if windows else name
    zone = _load(key)
    if zone is None:
        raise ValueError(f"unknown time zone {name!r}")
    return zone


@lru_cache(maxsize=512)
def _load(key: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
