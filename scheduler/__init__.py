"""Scheduled work: survey reminders, bulletin builds before each station's airtime and
group broadcasts, on APScheduler 3 with a job store in the project's database.

Empty until the distribution issue; the package exists so the layout shows where that
work goes.
"""
