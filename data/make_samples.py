"""Generate the sample employee handbook PDF used by the answer desk.

Run from the repository root:

    python data/make_samples.py

It writes ``data/samples/employee_handbook.pdf``. The output is deterministic:
the creation date is fixed (and fpdf2 derives the document /ID from the
content and that date), so regenerating yields the same bytes. Every section is rendered on its own A4 page so that each fact
lives on one known (1-based) page; the evaluation set in ``data/eval/dev.jsonl``
relies on these page numbers. The script fails loudly if a section would spill
over onto a second page.

Only the core font Helvetica is used, so all text must stay within latin-1
(write "EUR", straight quotes and "-" instead of dashes).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

OUT_PATH = Path(__file__).resolve().parent / "samples" / "employee_handbook.pdf"

COMPANY = "Larkspur Systems GmbH"
FOOTER = "Larkspur Systems Employee Handbook - Page {n}"
HEADER = "Larkspur Systems GmbH - Employee Handbook - Edition 2026 (effective 1 January 2026)"
CREATION_DATE = datetime(2026, 1, 1, tzinfo=UTC)

# Each section is one page. A block is ("p", text), ("h", subheading) or
# ("ul", [item, ...]).
SECTIONS: list[dict] = [
    {
        "title": "1 Welcome to Larkspur Systems",
        "blocks": [
            (
                "p",
                (
                    "Welcome to Larkspur Systems GmbH. Whether you joined us this week or have been "
                    "with us for years, this handbook is the single reference for the rules that apply "
                    "to everyday working life at Larkspur. This edition replaces all earlier versions "
                    "and is effective from 1 January 2026. Where a later memo from the management or "
                    "from the People & Culture team changes a rule, the memo takes precedence over this "
                    "handbook until the next edition is published. Memos are announced on the intranet "
                    "and stored next to this handbook."
                ),
            ),
            ("h", "About the company"),
            (
                "p",
                (
                    "Larkspur Systems was founded in 2011 in Leipzig by three former university "
                    "researchers who wanted to build reliable scheduling software for hospitals and "
                    "care providers. Today around 310 people work for Larkspur, most of them in product "
                    "development, customer support and implementation. Our headquarters are at "
                    "Karl-Heine-Strasse 87, 04229 Leipzig, and we run a small sales office in Vienna "
                    "with 18 colleagues. Our main product, LarkRoster, plans the shifts of nurses and "
                    "doctors in more than 900 clinics in Germany, Austria and Switzerland. The company "
                    "is led by the managing directors Dr. Anja Reimann (Chief Executive Officer) and "
                    "Tobias Brenner (Chief Financial Officer)."
                ),
            ),
            (
                "p",
                (
                    "We value clarity, care and craftsmanship. In practice this means that we write "
                    "things down, that we ask when something is unclear, and that we treat colleagues "
                    "and customers the way we would like to be treated ourselves."
                ),
            ),
            ("h", "Who to contact"),
            (
                "ul",
                [
                    (
                        "People & Culture (HR): questions about contracts, leave, sick notes, payroll and "
                        "this handbook go to people@larkspur-systems.example. The team answers within two "
                        "working days."
                    ),
                    (
                        "IT helpdesk: for laptop problems, access rights and locked accounts call the "
                        "internal extension 4357 (from outside: +49 341 5550 4357). The helpdesk is staffed "
                        "Monday to Friday from 08:00 to 18:00."
                    ),
                    (
                        "PeopleDesk: our HR portal at peopledesk.larkspur-systems.example is used for leave "
                        "requests, time tracking, sick notifications and expense claims."
                    ),
                    (
                        "Information security and business travel have their own contacts, which are "
                        "listed in sections 7 and 8."
                    ),
                ],
            ),
        ],
    },
    {
        "title": "2 Working Hours and Overtime",
        "blocks": [
            (
                "p",
                (
                    "The regular working time of a full-time employee at Larkspur is 38 hours per week, "
                    "spread over Monday to Friday, which corresponds to an average of 7.6 hours per "
                    "day. Part-time employees agree their weekly hours and working days individually "
                    "in their employment contract."
                ),
            ),
            ("h", "Flexitime and core hours"),
            (
                "p",
                (
                    "We work in a flexitime model. You may start and finish your working day at any "
                    "time between 07:00 and 20:00, as long as your team can rely on you. From Monday to "
                    "Thursday the core hours are 10:00 to 15:00; on Fridays the core hours end at "
                    "13:00. During core hours every employee is expected to be working and reachable, "
                    "unless they are on leave, sick, travelling or have agreed an exception with their "
                    "manager. Meetings that involve several teams should be scheduled inside core hours."
                ),
            ),
            (
                "p",
                (
                    "By law, a working day may not exceed 10 hours. You must take a break of at least "
                    "30 minutes if you work more than six hours, and of at least 45 minutes if you work "
                    "more than nine hours. Breaks do not count as working time. Working time is "
                    "recorded every day in PeopleDesk, at the latest on the following working day."
                ),
            ),
            ("h", "Time account and overtime"),
            (
                "p",
                (
                    "Differences between recorded and contractual hours are collected on a personal "
                    "time account. The balance may range between minus 12 hours and plus 45 hours. "
                    "Overtime is only recognised if your manager requested or approved it in advance; "
                    "simply staying longer does not create a claim."
                ),
            ),
            (
                "p",
                (
                    "Approved overtime is compensated with time off in lieu at a ratio of 1:1, that is, "
                    "one hour of overtime gives one hour off. If the time off cannot be taken within the "
                    "following calendar quarter for business reasons, the overtime hours are paid out "
                    "with the next payroll at the regular hourly rate plus a supplement of 35 percent. "
                    "Work on Sundays and public holidays requires the prior approval of the department "
                    "head and is paid with a supplement of 60 percent in addition to the time off."
                ),
            ),
        ],
    },
    {
        "title": "3 Vacation and Annual Leave",
        "blocks": [
            (
                "p",
                (
                    "Rest matters. Full-time employees working a five-day week receive 28 working days "
                    "of paid annual leave per calendar year. Employees who work fewer days per week "
                    "receive leave pro rata: the 28 days are multiplied by the number of contractual "
                    "working days per week and divided by five, rounded up to the next half day. An "
                    "employee working four days a week, for example, is entitled to 22.5 days of "
                    "annual leave. If you join or leave during the year, you receive one twelfth of "
                    "the annual entitlement for every full month of employment."
                ),
            ),
            ("h", "Requesting leave"),
            (
                "p",
                (
                    "Leave is requested in the HR portal PeopleDesk at least two weeks (14 calendar days) "
                    "before the first day of absence. Your manager approves or declines the request "
                    "within one week; a request that is not answered in that time should be escalated "
                    "to People & Culture. Leave of more than 15 consecutive working days must be "
                    "requested at least 8 weeks in advance and additionally needs the approval of the "
                    "department head. Please coordinate with your team so that customer support and "
                    "on-call duties remain covered, especially during the summer school holidays."
                ),
            ),
            ("h", "Carry-over"),
            (
                "p",
                (
                    "We want you to take your leave in the year in which it is earned. Up to 5 unused "
                    "days may be carried over into the next calendar year; carried-over days must be "
                    "taken by 31 March of that year, otherwise they expire. Days that could not be "
                    "taken because of a long illness are exempt from this rule and are handled "
                    "individually by People & Culture."
                ),
            ),
            ("h", "Special days off"),
            (
                "p",
                (
                    "The office is closed on 24 December and 31 December. These two days are granted "
                    "as additional paid days off and are not deducted from your annual leave. In "
                    "addition, you receive one day of paid special leave when you move house and one "
                    "paid volunteering day per calendar year for charitable work. If you fall ill "
                    "during your vacation and provide a doctor's certificate, the days of illness are "
                    "not counted as leave."
                ),
            ),
        ],
    },
    {
        "title": "4 Sick Leave",
        "blocks": [
            (
                "p",
                (
                    "If you are ill, please stay at home and recover. To keep the impact on your team "
                    "small, we ask you to follow a few simple rules."
                ),
            ),
            ("h", "Notification"),
            (
                "p",
                (
                    "On the first day of illness you must inform your manager personally, by phone, "
                    "before 09:00. If you cannot reach your manager, leave a message and inform a "
                    "colleague of your team as well. Please also record the absence as sick leave in "
                    "PeopleDesk on the same day and tell us how long you expect to be absent. If the "
                    "illness lasts longer than expected, inform your manager again on the last day of "
                    "the previous estimate. Employees working from home follow exactly the same rules."
                ),
            ),
            ("h", "Doctor's certificate"),
            (
                "p",
                (
                    "A doctor's certificate of incapacity for work is required from the 4th consecutive "
                    "calendar day of illness onwards; weekends and public holidays count. For employees "
                    "insured in Germany the certificate is transmitted electronically by the health "
                    "insurance fund, so you only need to see a doctor and confirm in PeopleDesk that a "
                    "certificate exists. In justified individual cases People & Culture may ask for a "
                    "certificate from the first day."
                ),
            ),
            ("h", "Pay during illness"),
            (
                "p",
                (
                    "Larkspur continues to pay your full salary for up to six weeks (42 calendar days) "
                    "per illness. After that, employees insured in Germany receive sick pay from their "
                    "health insurance fund. Employees who have completed their probation period "
                    "additionally receive a voluntary top-up from Larkspur so that, together with the "
                    "sick pay, they receive 90 percent of their net salary until the end of the 13th "
                    "week of illness."
                ),
            ),
            ("h", "Doctor's appointments and return to work"),
            (
                "p",
                (
                    "Routine doctor's appointments should be scheduled outside core hours whenever "
                    "possible; if that is not possible, the appointment counts as working time. If you "
                    "have been unable to work for longer than six weeks within twelve months, "
                    "People & Culture will offer you a confidential return-to-work conversation "
                    "(occupational reintegration management). Taking part is voluntary and aims to "
                    "find out what support helps you stay healthy at work."
                ),
            ),
        ],
    },
    {
        "title": "5 Expenses and Reimbursement",
        "blocks": [
            (
                "p",
                (
                    "Larkspur reimburses reasonable expenses that you incur on company business, such as "
                    "travel costs, meals during business trips, conference fees or small purchases for "
                    "your work. Expenses are reimbursed only if they were necessary and, where required, "
                    "approved in advance."
                ),
            ),
            ("h", "Submitting a claim"),
            (
                "p",
                (
                    "Expense claims are submitted in the expenses module of PeopleDesk within 30 days of "
                    "the date on which the expense occurred. Late claims are only accepted with the "
                    "approval of the department head, and claims older than 90 days are rejected. For "
                    "every single item above EUR 25 a receipt must be attached, either as a scan or a "
                    "clear photo; for smaller amounts a short description of the purpose is sufficient. "
                    "Keep the original receipts until the claim has been paid."
                ),
            ),
            ("h", "Approval and payment"),
            (
                "p",
                (
                    "Every claim is approved by your manager. Claims with a total of more than "
                    "EUR 1,500 must additionally be approved by the head of finance. Claims approved by "
                    "the 18th of a month are paid with that month's payroll; later claims are paid "
                    "with the following payroll. Employees who travel frequently can apply for a "
                    "company credit card with a monthly limit of EUR 5,000; card transactions must be "
                    "documented in the same way as other expenses."
                ),
            ),
            ("h", "Meal allowance and mileage"),
            (
                "p",
                (
                    "On business trips within Germany you receive a daily meal allowance of EUR 44 for "
                    "every full day away from home. On the day of arrival and the day of departure the "
                    "allowance is EUR 16. If a meal is provided, for example breakfast included in the "
                    "hotel price, the allowance is reduced by EUR 8 for breakfast and EUR 12 for lunch "
                    "or dinner. Allowances for trips abroad follow the official country rates. If your "
                    "manager approves the use of your private car for a business trip, you receive "
                    "EUR 0.30 per kilometre driven."
                ),
            ),
            ("h", "What is not reimbursed"),
            (
                "p",
                (
                    "Traffic and parking fines, personal items, minibar charges and alcohol are not "
                    "reimbursed. The only exception is documented client entertainment, which is "
                    "reimbursed up to EUR 70 per participant including drinks."
                ),
            ),
        ],
    },
    {
        "title": "6 Remote Work",
        "blocks": [
            (
                "p",
                (
                    "Larkspur is an office-first company with flexible remote work. We believe that "
                    "shared time in the office helps teams learn from each other, while remote days "
                    "give room for focused work and reduce commuting."
                ),
            ),
            ("h", "How much remote work is possible"),
            (
                "p",
                (
                    "Employees whose role allows it may work from home on up to 2 days per week. "
                    "Remote work requires the agreement of your manager; the agreed days are recorded "
                    "in PeopleDesk and can be changed by mutual agreement. Unused remote days cannot be "
                    "carried over to the following week. Your manager may ask you to come to the "
                    "office on a remote day for workshops, onboarding of new colleagues or customer "
                    "visits, announced at least one day in advance."
                ),
            ),
            ("h", "Availability"),
            (
                "p",
                (
                    "When working remotely you must be reachable by chat, video call and phone during "
                    "the core hours described in section 2, and you follow the same working time, "
                    "break and time-tracking rules as in the office."
                ),
            ),
            ("h", "Home-office budget"),
            (
                "p",
                (
                    "To set up a healthy workplace at home, every employee receives a one-time "
                    "home-office budget of EUR 400, for example for an office chair, a desk or a "
                    "monitor. The budget is claimed through the normal expense process with receipts "
                    "and must be used within the first twelve months after it was first requested. "
                    "Items bought from the budget become your property. Internet and electricity costs "
                    "at home are not reimbursed."
                ),
            ),
            ("h", "Workplace and data protection"),
            (
                "p",
                (
                    "Your remote workplace must allow confidential work: nobody else may be able to see "
                    "your screen or listen to customer calls, and you may not print confidential "
                    "documents at home. Public places such as cafes or trains are fine for occasional "
                    "work on internal documents, but never for customer or patient data."
                ),
            ),
            ("h", "Working from abroad"),
            (
                "p",
                (
                    "Working temporarily from another EU country is possible for up to 20 working days "
                    "per calendar year. It must be requested from People & Culture at least four weeks "
                    "in advance so that the necessary social security certificate can be obtained. "
                    "Working from countries outside the EU is not permitted."
                ),
            ),
        ],
    },
    {
        "title": "7 Information Security",
        "blocks": [
            (
                "p",
                (
                    "Our customers trust us with the rosters of their hospital staff, and our systems "
                    "sometimes touch patient-related data. Protecting this information is part of "
                    "everyone's job, not only the security team's."
                ),
            ),
            ("h", "Passwords and multi-factor authentication"),
            (
                "p",
                (
                    "Passwords for company accounts must be at least 14 characters long and must not be "
                    "reused for any other account, private or business. Use the company password "
                    "manager to generate and store them. We do not force regular password changes, but "
                    "you must change a password immediately if you suspect that it has become known to "
                    "someone else. Multi-factor authentication (MFA) is mandatory for all company "
                    "accounts, including email, VPN, the source code repositories and PeopleDesk. Use "
                    "the authenticator app or a hardware security key; codes sent by SMS are not "
                    "accepted as a second factor."
                ),
            ),
            ("h", "Reporting incidents and lost devices"),
            (
                "p",
                (
                    "Report a lost or stolen laptop, phone or security key, and any suspected security "
                    "incident, to the security team at security@larkspur-systems.example within 1 hour "
                    "of noticing it. Outside office hours call the security on-call number printed on "
                    "the back of your access badge. Reporting quickly is more important than being "
                    "sure; nobody will be blamed for a report that turns out to be harmless."
                ),
            ),
            ("h", "Handling data"),
            (
                "p",
                (
                    "Information is classified as Public, Internal, Confidential or Strictly "
                    "Confidential. Customer data and anything related to patients is always Strictly "
                    "Confidential. Company data may never be stored on personal USB sticks, personal "
                    "external drives or private cloud storage; if you need to move data physically, "
                    "ask the IT helpdesk for an encrypted company USB drive. Confidential information "
                    "must not be entered into external generative AI tools that have not been approved "
                    "by the security team."
                ),
            ),
            ("h", "Everyday habits"),
            (
                "p",
                (
                    "Lock your screen whenever you leave your desk; devices lock automatically after 3 "
                    "minutes of inactivity. Install security updates within 72 hours of being "
                    "prompted. Visitors must be accompanied at all times in the office. Every "
                    "employee completes a security awareness training once a year; the security team "
                    "announces the dates."
                ),
            ),
        ],
    },
    {
        "title": "8 Business Travel",
        "blocks": [
            (
                "p",
                (
                    "Business travel is sometimes necessary to meet customers, implement LarkRoster on "
                    "site or attend conferences. Before you travel, please check whether a video call "
                    "would serve the same purpose."
                ),
            ),
            ("h", "Approval and booking"),
            (
                "p",
                (
                    "Every business trip needs the prior approval of your manager. Trains, flights and "
                    "hotels are booked exclusively through the Larkspur travel desk, which you reach at "
                    "travel@larkspur-systems.example or through the travel form in PeopleDesk. Please "
                    "submit your request at least three weeks before departure whenever possible, as "
                    "late bookings are considerably more expensive. Bookings made privately are only "
                    "reimbursed in emergencies."
                ),
            ),
            ("h", "Means of transport"),
            (
                "p",
                (
                    "For trips within Germany and to neighbouring countries the train is the preferred "
                    "means of transport. Train journeys are booked in second class; for journeys with a "
                    "scheduled duration of more than four hours first class may be booked. Flights are "
                    "booked in economy class if the scheduled flight time is under 7 hours; for longer "
                    "flights premium economy is permitted. Business class requires the approval of a "
                    "managing director. Taxis may be used if public transport is not reasonable, for "
                    "example when arriving after 22:00 or when carrying heavy equipment."
                ),
            ),
            ("h", "Hotels"),
            (
                "p",
                (
                    "The hotel cap is EUR 150 per night, including breakfast, in Germany and Austria. "
                    "In high-cost cities, namely Munich, Zurich, London and Paris, the cap is EUR 190 "
                    "per night. During trade fairs the travel desk may approve higher rates. If you "
                    "stay with friends instead of a hotel, there is no overnight allowance."
                ),
            ),
            ("h", "Travel time and insurance"),
            (
                "p",
                (
                    "Travel time during your regular working hours counts as working time. Travel "
                    "outside regular working hours is credited to your time account, up to the legal "
                    "maximum working time per day. Larkspur has a group travel health insurance for "
                    "all business trips abroad; the travel desk hands out the insurance card with your "
                    "booking confirmation. You may extend a business trip with private days at your "
                    "own expense if this does not increase the travel costs for Larkspur."
                ),
            ),
        ],
    },
    {
        "title": "9 Equipment and IT",
        "blocks": [
            (
                "p",
                (
                    "Good tools make good work. On your first working day you receive a laptop, an "
                    "external monitor, a keyboard, a mouse and a headset. Developers may choose between "
                    "a Linux laptop and a macOS laptop; all other roles receive a Windows laptop. "
                    "Additional equipment such as a second monitor can be requested through the "
                    "helpdesk portal at help.larkspur-systems.example and needs your manager's approval."
                ),
            ),
            ("h", "Refresh cycle"),
            (
                "p",
                (
                    "Laptops are replaced every 3 years, or earlier if they are defective and cannot be "
                    "repaired economically. The IT helpdesk contacts you about two months before your "
                    "laptop is due. When your laptop is replaced you may buy the old device, after it "
                    "has been securely wiped, for a flat price of EUR 120. Mobile phones are provided "
                    "only to employees in on-call, sales and implementation roles."
                ),
            ),
            ("h", "Using company devices"),
            (
                "p",
                (
                    "Company devices are managed centrally. Software may only be installed from the "
                    "company software centre; if you need a tool that is not available there, open a "
                    "request in the helpdesk portal. Reasonable private use of your laptop, for example "
                    "for online banking during a break, is allowed, but private files should be kept to "
                    "a minimum and are not backed up. Private smartphones may be used for email and "
                    "chat only through the managed work app, which separates company data from your "
                    "private data."
                ),
            ),
            ("h", "Damage and loss"),
            (
                "p",
                (
                    "Treat your equipment with care. Damage must be reported to the IT helpdesk "
                    "promptly; loss or theft must additionally be reported to the security team as "
                    "described in section 7. You are only liable for damage that you caused "
                    "intentionally or through gross negligence."
                ),
            ),
            ("h", "Leaving Larkspur"),
            (
                "p",
                (
                    "All company equipment, including laptop, charger, monitor, access badge and "
                    "hardware security keys, must be returned to the IT helpdesk on or before your last "
                    "working day. Employees who work mainly from home receive a prepaid return box. "
                    "Equipment that has not been returned within 14 days after the end of employment "
                    "is charged at its residual value."
                ),
            ),
        ],
    },
    {
        "title": "10 Code of Conduct and Gifts",
        "blocks": [
            (
                "p",
                (
                    "Our customers are hospitals and care providers, many of them in the public sector. "
                    "Their trust depends on our integrity, so we hold ourselves to high standards of "
                    "conduct towards customers, partners and each other."
                ),
            ),
            ("h", "Respect at work"),
            (
                "p",
                (
                    "We do not tolerate discrimination, harassment or bullying of any kind. If you "
                    "experience or observe such behaviour, speak to your manager, to People & Culture "
                    "or to one of the two confidential contact persons, whose names are published on "
                    "the intranet. Concerns can also be raised anonymously through the whistleblowing "
                    "portal. Nobody who raises a concern in good faith will suffer any disadvantage."
                ),
            ),
            ("h", "Gifts and invitations"),
            (
                "p",
                (
                    "Small courtesy gifts such as a calendar or a box of chocolates may be accepted. Any "
                    "gift or invitation with a value above EUR 50 must be declared to the compliance "
                    "officer in the gift register within one week of receipt; the compliance officer "
                    "decides whether it may be kept, must be returned or is donated. Cash, vouchers and "
                    "gift cards may never be accepted, regardless of their value. When giving gifts, "
                    "remember that employees of public-sector customers may usually only accept gifts "
                    "worth up to EUR 10, so gifts to them are limited to that amount."
                ),
            ),
            ("h", "Conflicts of interest"),
            (
                "p",
                (
                    "Secondary employment and side businesses must be registered with People & Culture "
                    "before they start; they are permitted as long as they do not compete with Larkspur "
                    "or affect your work. You may not take part in purchasing decisions involving a "
                    "supplier in which you or a close relative have a financial interest."
                ),
            ),
            ("h", "Public statements"),
            (
                "p",
                (
                    "Only the managing directors and the marketing team speak publicly on behalf of "
                    "Larkspur. On social media, make clear that you are expressing your personal "
                    "opinion, and never share confidential information about customers or projects."
                ),
            ),
            ("h", "Compliance contact"),
            (
                "p",
                (
                    "The compliance officer is Dr. Miriam Hoffmann, reachable at "
                    "compliance@larkspur-systems.example. Violations of this code may lead to "
                    "disciplinary measures up to termination of employment."
                ),
            ),
        ],
    },
]


class HandbookPDF(FPDF):
    def header(self) -> None:
        self.set_font("Helvetica", "I", 8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 5, HEADER, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0, 0, 0)
        self.ln(4)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("Helvetica", "", 8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 10, FOOTER.format(n=self.page_no()), align="C")
        self.set_text_color(0, 0, 0)


def build_pdf() -> HandbookPDF:
    pdf = HandbookPDF(orientation="P", unit="mm", format="A4")
    pdf.set_margins(left=20, top=15, right=20)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.set_creation_date(CREATION_DATE)
    pdf.set_title("Larkspur Systems Employee Handbook 2026")
    pdf.set_author(f"{COMPANY} - People & Culture")
    pdf.set_subject("Employee handbook: policies for all employees")
    pdf.set_lang("en")

    for number, section in enumerate(SECTIONS, start=1):
        pdf.add_page()
        if number == 1:
            pdf.set_font("Helvetica", "B", 20)
            pdf.cell(0, 10, "Employee Handbook 2026", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.set_font("Helvetica", "", 11)
            pdf.cell(0, 6, COMPANY, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(4)
        pdf.set_font("Helvetica", "B", 16)
        pdf.cell(0, 10, section["title"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(2)
        for kind, content in section["blocks"]:
            if kind == "h":
                pdf.ln(1)
                pdf.set_font("Helvetica", "B", 12)
                pdf.cell(0, 7, content, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            elif kind == "p":
                pdf.set_font("Helvetica", "", 10.5)
                pdf.multi_cell(0, 5.2, content, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
                pdf.ln(2)
            elif kind == "ul":
                pdf.set_font("Helvetica", "", 10.5)
                for item in content:
                    pdf.set_x(pdf.l_margin + 4)
                    pdf.multi_cell(0, 5.2, "- " + item, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
                    pdf.ln(1)
            else:
                raise ValueError(f"unknown block kind {kind!r}")
        if pdf.page_no() != number:
            raise SystemExit(
                f"section {section['title']!r} overflowed onto page {pdf.page_no()}; shorten it"
            )
    return pdf


def main() -> int:
    OUT_PATH.parent.mkdir(parents=True, exist_ok=True)
    pdf = build_pdf()
    pdf.output(str(OUT_PATH))
    print(f"wrote {OUT_PATH} ({pdf.page_no()} pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
