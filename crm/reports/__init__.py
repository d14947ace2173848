"""Reports: how the team answers, where customers come from, who brings the revenue.

`Reports` (reports.py) runs each report by name; `facts.py` records the waits the service
reports measure; `render.py` and `charts.py` put a report in words, CSV, JSON and PNG;
`digest.py` is the weekly report to the admins; `rfm.py` the segments campaigns can target.
"""

from crm.reports.reports import ReportName, Reports, dimension, report_name

__all__ = ["ReportName", "Reports", "dimension", "report_name"]
