"""Words the synthetic documents are made of (plain ASCII / Latin-1: the PDF base-14 fonts print them)."""

from __future__ import annotations

import datetime as dt
import random

FIRST_NAMES = (
    "Anna", "Ben", "Carla", "David", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Keiko", "Liam", "Maria",
    "Noah", "Olga", "Pavel", "Quinn", "Rosa", "Samir", "Tessa", "Umar", "Vera", "Walter", "Xenia", "Yusuf", "Zoe",
    "Lucas", "Amelie", "Tomas", "Priya", "Oscar", "Hanna", "Mateo", "Sofia", "Erik", "Leila",
)
LAST_NAMES = (
    "Adler", "Becker", "Castro", "Dubois", "Eriksen", "Fischer", "Garcia", "Hoffmann", "Ivanova", "Jensen", "Kowalski",
    "Larsen", "Moreau", "Novak", "Okafor", "Petrov", "Quintero", "Rossi", "Schmidt", "Tanaka", "Ueda", "Varga",
    "Weber", "Yilmaz", "Zimmermann", "Brennan", "Lindqvist", "Haddad", "Nakamura", "Oliveira", "Svensson", "Walsh",
)
COMPANY_WORDS = (
    "Acme", "Blue River", "Northwind", "Summit", "Granite", "Silverline", "Redwood", "Harbor", "Brightside", "Falcon",
    "Keystone", "Lakeside", "Meridian", "Oakridge", "Pinnacle", "Quantum", "Riverside", "Sterling", "Vertex", "Westbrook",
    "Alpine", "Cobalt", "Evergreen", "Ironwood", "Juniper", "Maple", "Nordic", "Orion", "Polaris", "Crescent",
)
COMPANY_TRADES = (
    "Tools", "Logistics", "Supplies", "Consulting", "Software", "Print", "Engineering", "Foods", "Textiles", "Labs",
    "Solutions", "Electric", "Freight", "Design", "Analytics", "Hardware", "Media", "Systems", "Trading", "Services",
)
COMPANY_FORMS = ("GmbH", "Ltd", "LLC", "Inc.", "AG", "B.V.", "S.A.", "Co.", "Group", "SARL", "Oy", "plc")
STREETS = (
    "Werkstrasse", "Market Street", "Harbour Road", "Rue de la Paix", "Kingsway", "Elm Avenue", "Hauptstrasse",
    "Via Roma", "Station Road", "Park Lane", "Industrieweg", "Mill Lane", "Oak Street", "Bahnhofplatz", "Quai Voltaire",
)
CITIES = (
    ("10115", "Berlin"), ("80331", "Munich"), ("75001", "Paris"), ("SW1A 1AA", "London"), ("1011", "Amsterdam"),
    ("8001", "Zurich"), ("00184", "Rome"), ("1010", "Vienna"), ("02108", "Boston"), ("94105", "San Francisco"),
    ("60601", "Chicago"), ("M5V 2T6", "Toronto"), ("2000", "Sydney"), ("111 22", "Stockholm"), ("00-001", "Warsaw"),
)
PRODUCTS = (
    "Torque wrench", "Socket set, 40 pieces", "Safety gloves", "Cordless drill", "Laser level", "Workbench",
    "Office chair", "Standing desk", "Monitor arm", "USB-C dock", "Laptop stand", "Printer toner", "Copy paper, A4",
    "Consulting hours", "Site visit", "Software licence", "Support plan", "Cloud storage, 1 TB", "Training session",
    "Design review", "Shipping and handling", "Pallet rental", "Cable ties", "Label printer", "Barcode scanner",
    "Steel shelving unit", "LED panel", "Extension cord", "First aid kit", "Hard hat", "Ear protection",
    "Maintenance visit", "Calibration service", "Spare parts kit", "Express delivery", "Project management",
)
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
EMAIL_DOMAINS = ("example.com", "mail.example.org", "example.net", "post.example.de", "inbox.example.co.uk")

# pseudo-prose for text pages
NOUNS = (
    "report", "market", "supplier", "warehouse", "contract", "customer", "budget", "forecast", "shipment", "invoice",
    "network", "policy", "team", "process", "quarter", "region", "product", "service", "system", "project", "study",
    "survey", "model", "schedule", "audit", "review", "strategy", "partner", "portfolio", "demand", "pipeline",
)
VERBS = (
    "improves", "reduces", "supports", "extends", "tracks", "delays", "affects", "requires", "includes", "reflects",
    "strengthens", "measures", "replaces", "explains", "follows", "changes", "limits", "drives", "shapes", "guides",
)
ADJECTIVES = (
    "annual", "regional", "new", "final", "quarterly", "internal", "external", "recent", "major", "minor", "overall",
    "early", "stable", "strong", "weak", "rapid", "careful", "detailed", "broad", "local", "global", "typical",
)
ADVERBS = ("clearly", "steadily", "slightly", "largely", "mostly", "often", "rarely", "further", "again", "directly")
CONNECTORS = ("However,", "In addition,", "As a result,", "Meanwhile,", "For example,", "Overall,", "In contrast,",
              "Therefore,", "At the same time,", "In practice,")
TOPICS = (
    "Supply Chain Outlook", "Regional Sales Review", "Warehouse Automation", "Customer Retention", "Energy Costs",
    "Remote Work Policy", "Product Quality Audit", "Freight Capacity", "Pricing Strategy", "Market Expansion",
    "Risk Management", "Data Governance", "Procurement Savings", "Service Levels", "Fleet Renewal",
)


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def company(rng: random.Random) -> str:
    style = rng.random()
    if style < 0.6:
        return f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_TRADES)} {rng.choice(COMPANY_FORMS)}"
    if style < 0.8:
        a, b = rng.sample(LAST_NAMES, 2)
        return f"{a} & {b} {rng.choice(COMPANY_FORMS)}"
    return f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_TRADES)}"


def address(rng: random.Random) -> str:
    street = rng.choice(STREETS)
    number = rng.randint(1, 240)
    postcode, city = rng.choice(CITIES)
    return f"{street} {number}, {postcode} {city}"


def date(rng: random.Random, start: int = 2019, end: int = 2026) -> dt.date:
    first = dt.date(start, 1, 1).toordinal()
    last = dt.date(end, 12, 31).toordinal()
    return dt.date.fromordinal(rng.randint(first, last))


def sentence(rng: random.Random) -> str:
    words = []
    if rng.random() < 0.25:
        words.append(rng.choice(CONNECTORS))
    det = "The" if not words else "the"
    words += [det, rng.choice(ADJECTIVES), rng.choice(NOUNS), rng.choice(VERBS)]
    if rng.random() < 0.4:
        words.append(rng.choice(ADVERBS))
    words += ["the", rng.choice(ADJECTIVES), rng.choice(NOUNS)]
    if rng.random() < 0.5:
        words += ["of", "the", rng.choice(NOUNS)]
    if rng.random() < 0.3:
        words += ["by", f"{rng.randint(2, 48)}", "percent"]
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def paragraph(rng: random.Random, sentences: tuple[int, int] = (3, 6)) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(*sentences)))
