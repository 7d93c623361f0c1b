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


# invoices in other languages -------------------------------------------------------------------------------
#: The languages `generate_invoice` prints; English is drawn for half the seeds, each other for a tenth.
INVOICE_LANGUAGES = ("en", "fr", "de", "es", "it", "nl")
MONTHS_IN = {
    "en": MONTHS,
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November",
           "Dezember"),
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
           "noviembre", "diciembre"),
    "it": ("gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre", "ottobre",
           "novembre", "dicembre"),
    "nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
           "november", "december"),
}
#: An invoice's printed words per language: each label is drawn from its list (``{pct}``: the tax rate; a footer's
#: ``{days}`` / ``{iban}``: payment terms). English keeps the order of the lists the generator always had.
INVOICE_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "title": ("INVOICE", "Invoice", "TAX INVOICE", "BILL", "Commercial Invoice", "Invoice / Receipt"),
        "invoice_number": ("Invoice No.", "Invoice #", "Number:", "Invoice number:", "Invoice No:", "Inv. No.:",
                           "Invoice ID:", "Bill No.:", "Document No.:", "Reference:"),
        "invoice_date": ("Date:", "Invoice date:", "Issue date:", "Dated:", "Date of issue:", "Billing date:"),
        "due_date": ("Due date:", "Payment due:", "Due:", "Pay by:", "Due on:"),
        "customer": ("Bill to:", "Customer:", "Billed to:", "Invoice to:", "Sold to:", "Client:", "Buyer:"),
        "description": ("Description", "Item", "Product / Service", "Article"),
        "quantity": ("Qty", "Quantity", "Units"),
        "unit_price": ("Unit price", "Price", "Rate", "Unit cost"),
        "line_total": ("Amount", "Total", "Line total", "Net"),
        "position": ("#", "Pos.", "No."),
        "subtotal": ("Subtotal:", "Net amount:", "Sub-total:", "Net total:", "Total excl. tax:"),
        "tax": ("Tax ({pct}):", "VAT {pct}:", "Sales tax {pct}:", "MwSt. {pct}:", "GST {pct}:"),
        "total": ("Total:", "Total due:", "Amount due:", "TOTAL", "Balance due:", "Grand total:", "Total amount:",
                  "Amount payable:", "Total incl. tax:"),
        "footer": ("Payment within {days} days. Thank you for your business.",
                   "Please pay to IBAN {iban}, quoting the invoice number.",
                   "All prices include delivery unless stated otherwise."),
    },
    "fr": {
        "title": ("FACTURE", "Facture", "FACTURE ACQUITTÉE", "Note d'honoraires", "Facture / Reçu"),
        "invoice_number": ("Facture n°", "N° de facture :", "Numéro de facture :", "Facture N° :", "Référence :",
                           "N° :", "Numéro :"),
        "invoice_date": ("Date :", "Date de facture :", "Date d'émission :", "Émise le :", "Date de facturation :",
                         "Le :"),
        "due_date": ("Échéance :", "Date d'échéance :", "À payer avant le :", "Date limite de paiement :"),
        "customer": ("Client :", "Facturé à :", "Destinataire :", "Adresse de facturation :", "Acheteur :"),
        "description": ("Désignation", "Description", "Article", "Libellé"),
        "quantity": ("Qté", "Quantité", "Nb"),
        "unit_price": ("Prix unitaire", "P.U. HT", "Prix", "PU"),
        "line_total": ("Montant", "Total HT", "Montant HT", "Total"),
        "position": ("#", "Réf.", "N°"),
        "subtotal": ("Total HT :", "Montant HT :", "Sous-total :", "Total hors taxes :"),
        "tax": ("TVA {pct} :", "TVA ({pct}) :", "Montant TVA {pct} :", "T.V.A. {pct} :"),
        "total": ("Total TTC :", "Net à payer :", "Montant TTC :", "Total à payer :", "Montant total :", "TOTAL TTC",
                  "Total :"),
        "footer": ("Paiement à {days} jours. Merci de votre confiance.",
                   "Règlement par virement sur l'IBAN {iban} en indiquant le numéro de facture.",
                   "Pas d'escompte pour paiement anticipé."),
    },
    "de": {
        "title": ("RECHNUNG", "Rechnung", "Rechnung / Quittung", "Gutschrift", "Proforma-Rechnung"),
        "invoice_number": ("Rechnungsnummer:", "Rechnung Nr.:", "Rechnungs-Nr.:", "Beleg-Nr.:", "Nr.:",
                           "Belegnummer:", "Unser Zeichen:"),
        "invoice_date": ("Datum:", "Rechnungsdatum:", "Belegdatum:", "Ausgestellt am:", "Leistungsdatum:"),
        "due_date": ("Fällig am:", "Zahlbar bis:", "Fälligkeitsdatum:", "Zahlungsziel:"),
        "customer": ("Kunde:", "Rechnungsempfänger:", "An:", "Rechnung an:", "Auftraggeber:"),
        "description": ("Bezeichnung", "Beschreibung", "Artikel", "Leistung"),
        "quantity": ("Menge", "Anz.", "Anzahl"),
        "unit_price": ("Einzelpreis", "Preis", "E-Preis", "Stückpreis"),
        "line_total": ("Betrag", "Gesamt", "Summe", "Gesamtpreis"),
        "position": ("Pos.", "Nr.", "#"),
        "subtotal": ("Zwischensumme:", "Nettobetrag:", "Summe netto:", "Gesamt netto:"),
        "tax": ("MwSt. {pct}:", "USt. {pct}:", "zzgl. {pct} MwSt.:", "Umsatzsteuer {pct}:"),
        "total": ("Gesamtbetrag:", "Rechnungsbetrag:", "Summe brutto:", "Gesamt brutto:", "Zu zahlen:", "Endbetrag:",
                  "Gesamtsumme:"),
        "footer": ("Zahlbar innerhalb von {days} Tagen ohne Abzug. Vielen Dank für Ihren Auftrag.",
                   "Bitte überweisen Sie den Betrag auf IBAN {iban} unter Angabe der Rechnungsnummer.",
                   "Es gelten unsere allgemeinen Geschäftsbedingungen."),
    },
    "es": {
        "title": ("FACTURA", "Factura", "Factura simplificada", "FACTURA / RECIBO"),
        "invoice_number": ("Factura n.º:", "Nº de factura:", "Número de factura:", "Factura Nº:", "Referencia:",
                           "Núm.:"),
        "invoice_date": ("Fecha:", "Fecha de factura:", "Fecha de emisión:", "Fecha factura:"),
        "due_date": ("Vencimiento:", "Fecha de vencimiento:", "Pagar antes de:"),
        "customer": ("Cliente:", "Facturar a:", "Destinatario:", "Datos del cliente:"),
        "description": ("Descripción", "Concepto", "Artículo"),
        "quantity": ("Cant.", "Cantidad", "Uds."),
        "unit_price": ("Precio unitario", "Precio", "P. unit."),
        "line_total": ("Importe", "Total", "Subtotal"),
        "position": ("#", "Ref.", "Nº"),
        "subtotal": ("Base imponible:", "Subtotal:", "Importe neto:"),
        "tax": ("IVA {pct}:", "IVA ({pct}):", "Cuota IVA {pct}:"),
        "total": ("Total:", "Total factura:", "Importe total:", "Total a pagar:", "TOTAL"),
        "footer": ("Forma de pago: transferencia a {days} días. Gracias por su confianza.",
                   "Ingrese el importe en la cuenta IBAN {iban} indicando el número de factura.",
                   "Los precios incluyen el transporte salvo indicación contraria."),
    },
    "it": {
        "title": ("FATTURA", "Fattura", "Fattura accompagnatoria", "Ricevuta fiscale"),
        "invoice_number": ("Fattura n.", "Numero fattura:", "N. fattura:", "Fattura N°:", "Documento n.:",
                           "Rif.:"),
        "invoice_date": ("Data:", "Data fattura:", "Data di emissione:", "Data documento:", "del"),
        "due_date": ("Scadenza:", "Data scadenza:", "Pagamento entro:"),
        "customer": ("Cliente:", "Destinatario:", "Intestatario:", "Spett.le"),
        "description": ("Descrizione", "Articolo", "Prodotto"),
        "quantity": ("Q.tà", "Quantità", "Qtà"),
        "unit_price": ("Prezzo unitario", "Prezzo", "Prezzo un."),
        "line_total": ("Importo", "Totale", "Imponibile"),
        "position": ("#", "Cod.", "N."),
        "subtotal": ("Imponibile:", "Totale imponibile:", "Subtotale:"),
        "tax": ("IVA {pct}:", "IVA ({pct}):", "Imposta {pct}:"),
        "total": ("Totale:", "Totale fattura:", "Totale documento:", "Netto a pagare:", "Totale da pagare:"),
        "footer": ("Pagamento a {days} giorni data fattura. Grazie per la preferenza.",
                   "Bonifico bancario su IBAN {iban} indicando il numero della fattura.",
                   "Prezzi comprensivi di trasporto salvo diversa indicazione."),
    },
    "nl": {
        "title": ("FACTUUR", "Factuur", "Creditfactuur", "Factuur / Kwitantie"),
        "invoice_number": ("Factuurnummer:", "Factuur nr.:", "Factuurnr.:", "Nummer:", "Referentie:"),
        "invoice_date": ("Datum:", "Factuurdatum:", "Datum factuur:"),
        "due_date": ("Vervaldatum:", "Te betalen voor:", "Uiterste betaaldatum:"),
        "customer": ("Klant:", "Factuuradres:", "Aan:", "Debiteur:"),
        "description": ("Omschrijving", "Artikel", "Product"),
        "quantity": ("Aantal", "Aant."),
        "unit_price": ("Prijs per stuk", "Stukprijs", "Prijs"),
        "line_total": ("Bedrag", "Totaal", "Subtotaal"),
        "position": ("#", "Nr.", "Pos."),
        "subtotal": ("Subtotaal:", "Totaal excl. BTW:", "Netto bedrag:"),
        "tax": ("BTW {pct}:", "BTW ({pct}):", "Btw {pct}:"),
        "total": ("Totaal:", "Totaal incl. BTW:", "Te betalen:", "Totaalbedrag:", "Totaal te betalen:"),
        "footer": ("Betaling binnen {days} dagen. Bedankt voor uw opdracht.",
                   "Gelieve het bedrag over te maken op IBAN {iban} onder vermelding van het factuurnummer.",
                   "Op al onze leveringen zijn onze algemene voorwaarden van toepassing."),
    },
}
