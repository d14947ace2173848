"""/report in the managers' chat, through the Bot API double: the chart arrives as a photo with
a summary in the reader's language; only admins and leads may ask; mistakes explained."""

from __future__ import annotations

from crm.models import Manager
from crm.types import Role
from tests.bot.test_managers_chat import topic_text
from tests.crm.reports.test_charts import png_size
from tests.support.reports_data import seed
from tests.support.telegram_double import GROUP, TelegramDouble
from tests.support.telegram_fixtures import ServiceFactory, add_manager


async def test_report_sends_the_chart_as_a_photo(tg: TelegramDouble,
                                                 service: ServiceFactory) -> None:
    await seed()
    lead, lead_user = await add_manager(9201, "Lena", "lena")
    await Manager.filter(id=lead.id).update(role=Role.LEAD, language="ru")
    admin, admin_user = await add_manager(9202, "Adam", "adam")
    await Manager.filter(id=admin.id).update(role=Role.ADMIN, language="en")
    _, bob = await add_manager(9203, "Bob", "bob")
    async with service():
        tg.manager_says(GROUP, lead_user, "/report team 2026-03")
        [photo] = await tg.wait_for(lambda: tg.files_to(GROUP))
        assert photo.method == "sendPhoto" and photo.file is not None
        assert png_size(photo.file.data) == (1200, 700)
        assert "Команда — по менеджерам, 2026-03-01 – 2026-03-31" in photo.text
        assert "Olga" in photo.text and "Ivan" in photo.text

        tg.manager_says(GROUP, admin_user, "/report customers 2026-01-01..2026-03-31")
        await tg.wait_for(lambda: len(tg.files_to(GROUP)) == 2)
        caption = tg.files_to(GROUP)[1].text
        assert "share of customers making 80% of revenue: 50%" in caption

        tg.manager_says(GROUP, admin_user, "/report campaigns 2026-03")
        await tg.wait_for(lambda: len(tg.files_to(GROUP)) == 3)
        caption = tg.files_to(GROUP)[2].text
        assert "Campaigns, 2026-03-01 – 2026-03-31" in caption
        assert "campaigns started: 2" in caption and "reply rate: 50%" in caption
        tg.manager_says(GROUP, lead_user, "/report campaigns 2026-01")
        await tg.wait_for(lambda: "Рассылки" in topic_text(tg)
                          and "За этот период данных нет." in topic_text(tg))

        tg.manager_says(GROUP, bob, "/report")
        await tg.wait_for(lambda: "Reports are for admins and leads." in topic_text(tg))
        tg.manager_says(GROUP, admin_user, "/report hours lately")
        await tg.wait_for(lambda: "'lately' is not a period" in topic_text(tg))
        tg.manager_says(GROUP, admin_user, "/report csat 2025-01")
        await tg.wait_for(lambda: "No data for this period." in topic_text(tg))
    assert len(tg.files_to(GROUP)) == 3  # no chart for no data
    assert not tg.rejected
