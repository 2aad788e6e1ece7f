"""Release windows: when an incremental release may move traffic forward.

`incremental.window: {days: Mon-Fri, hours: "09:00-17:00", timezone: Europe/Berlin}`.
Times are the zone's wall-clock times (IANA zones through the standard library's
zoneinfo; the `tzdata` package supplies the database where the system has none), so a
window follows daylight saving time. An `hours` range whose end is not after its start
runs past midnight: `22:00-06:00` opens on each listed day at 22:00 and closes at 06:00
the next morning (`00:00-24:00`, the default, is the whole day).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["DAY_NAMES", "ReleaseWindow"]

#: Weekday names as written in `days`, Monday first (datetime.weekday() order).
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True)
class ReleaseWindow:
    """Steps advance only while a window is open (see the module docstring)."""

    days: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)  # weekday() numbers, sorted
    start: time = time(0, 0)
    end: time = time(0, 0)  # not after start: the next day's
    timezone: str = "UTC"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _openings(self, day: date) -> tuple[datetime, datetime] | None:
        if day.weekday() not in self.days:
            return None
        zone = self.zone
        opens = datetime.combine(day, self.start, tzinfo=zone)
        closes_on = day if self.end > self.start else day + timedelta(days=1)
        return opens, datetime.combine(closes_on, self.end, tzinfo=zone)

    def _around(self, when: datetime) -> list[tuple[datetime, datetime]]:
        """The openings that start from the day before `when` (local) to a week after."""
        today = when.astimezone(self.zone).date()
        found = (self._openings(today + timedelta(days=n)) for n in range(-1, 9))
        return [opening for opening in found if opening is not None]

    def is_open(self, when: datetime) -> bool:
        """Whether `when` (an aware datetime) is inside the window."""
        return any(opens <= when < closes for opens, closes in self._around(when))

    def next_open(self, when: datetime) -> datetime:
        """When the window next opens after `when` (`when` itself if it is open), in the
        window's zone."""
        if self.is_open(when):
            return when.astimezone(self.zone)
        return min(opens for opens, _ in self._around(when) if opens > when)

    def describe(self) -> str:
        """`Mon-Fri 09:00-17:00 Europe/Berlin`."""
        end = "24:00" if self.end == time(0) else self.end.strftime("%H:%M")
        return f"{show_days(self.days)} {self.start.strftime('%H:%M')}-{end} {self.timezone}"


def show_days(days: tuple[int, ...]) -> str:
    """(0, 1, 2, 3, 4) -> `Mon-Fri`; (0, 2, 4) -> `Mon,Wed,Fri`."""
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(
        DAY_NAMES[r[0]] if len(r) == 1 else f"{DAY_NAMES[r[0]]}-{DAY_NAMES[r[-1]]}" for r in runs
    )
