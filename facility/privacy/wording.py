"""The words of the privacy notice in each language: English as written, and its Dutch.

The notice (`privacy.notice`) writes every sentence in English and asks `say` for it in the
reader's language, as gettext would, without the toolchain: a sentence is looked up by its
English text, placeholders (`{n}`) and all. The kinds' own texts (purpose, data, people, clock,
default legal basis: `store.kinds`) are looked up the same way. A sentence without a translation
is shown in English; tests render the notice in every language with `strict=True`, which raises
instead, so a new kind or sentence without its Dutch fails there.
"""

from __future__ import annotations

LANGUAGES = ("en", "nl")

DUTCH: dict[str, str] = {
    # headings and frame
    "Privacy notice": "Privacyverklaring",
    "How we handle your personal data on these premises": (
        "Hoe wij op dit terrein met uw persoonsgegevens omgaan"
    ),
    "Version {version}; retention as in force since {since}.": (
        "Versie {version}; bewaartermijnen zoals van kracht sinds {since}."
    ),
    "Printed {when}.": "Afgedrukt {when}.",
    "Office: {office}.": "Vestiging: {office}.",
    "Legal limit in {country}: {duration}. Source: {source}.": (
        "Wettelijke grens in {country}: {duration}. Bron: {source}."
    ),
    "Who is responsible": "Wie is verantwoordelijk",
    "{controller} is responsible for this data (the controller).": (
        "{controller} is verantwoordelijk voor deze gegevens (de verwerkingsverantwoordelijke)."
    ),
    "Ask at reception who is responsible for this data.": (
        "Vraag bij de receptie wie verantwoordelijk is voor deze gegevens."
    ),
    "Questions and requests: {contact}.": "Vragen en verzoeken: {contact}.",
    "Questions and requests: at reception.": "Vragen en verzoeken: bij de receptie.",
    "Data protection officer: {dpo}.": "Functionaris gegevensbescherming: {dpo}.",
    "What we record, why, and for how long": "Wat wij vastleggen, waarom en hoe lang",
    "What": "Wat",
    "Why": "Waarom",
    "Legal basis": "Grondslag",
    "How long": "Hoe lang",
    "Who sees it": "Wie het ziet",
    "From {when}: {duration} {clock}.": "Vanaf {when}: {duration} {clock}.",
    "Left open, it is closed automatically after {duration}.": (
        "Blijft het open, dan wordt het na {duration} automatisch afgesloten."
    ),
    "Kept longer only for an incident": "Alleen bij een incident langer bewaard",
    "When an incident is investigated, the records it needs may be kept longer under an "
    "incident hold, and only as long as the investigation needs them. Every hold is recorded "
    "with its reason and reviewed.": (
        "Wordt een incident onderzocht, dan kunnen de gegevens die daarvoor nodig zijn langer "
        "worden bewaard onder een incidentblokkade, en alleen zolang het onderzoek ze nodig heeft. "
        "Elke blokkade wordt met de reden vastgelegd en beoordeeld."
    ),
    "Your rights": "Uw rechten",
    "See what we keep about you (access, article 15), and receive it in a machine-readable "
    "form (portability, article 20).": (
        "Inzien wat wij over u bewaren (inzage, artikel 15), en het ontvangen in een "
        "machineleesbare vorm (overdraagbaarheid, artikel 20)."
    ),
    "Have it corrected when it is wrong (rectification, article 16).": (
        "Het laten verbeteren als het niet klopt (rectificatie, artikel 16)."
    ),
    "Have it erased (erasure, article 17), unless an incident investigation still needs it.": (
        "Het laten wissen (gegevenswissing, artikel 17), tenzij een incidentonderzoek het nog "
        "nodig heeft."
    ),
    "Have its use restricted while a question about it is settled (restriction, article 18): "
    "it is then kept, but shown to no one but the privacy officer.": (
        "Het gebruik laten beperken zolang een vraag erover wordt afgehandeld (beperking, artikel "
        "18): het wordt dan bewaard, maar aan niemand getoond behalve de privacy officer."
    ),
    "Object to its use (objection, article 21); for the wireless network we then stop "
    "recording your device.": (
        "Bezwaar maken tegen het gebruik (bezwaar, artikel 21); voor het draadloze netwerk leggen "
        "wij uw apparaat dan niet meer vast."
    ),
    "Complain to {authority}.": "Een klacht indienen bij {authority}.",
    "the data protection authority of your country": (
        "de toezichthouder voor gegevensbescherming in uw land"
    ),
    "How to use them": "Hoe u ze gebruikt",
    "Ask {contact}, in writing or at reception. Say which right you use and, for the wireless "
    "network, your device's hardware (MAC) address.": (
        "Vraag het aan {contact}, schriftelijk of bij de receptie. Zeg welk recht u gebruikt en, "
        "voor het draadloze netwerk, het hardware-adres (MAC) van uw apparaat."
    ),
    "Ask at reception, or in writing. Say which right you use and, for the wireless network, "
    "your device's hardware (MAC) address.": (
        "Vraag het bij de receptie, of schriftelijk. Zeg welk recht u gebruikt en, voor het "
        "draadloze netwerk, het hardware-adres (MAC) van uw apparaat."
    ),
    "We answer within one month of receiving your request. When a request is complex we may "
    "take two more months; we then tell you so, and why, within the first month.": (
        "Wij antwoorden binnen een maand na ontvangst van uw verzoek. Is een verzoek ingewikkeld, "
        "dan kunnen wij twee maanden langer nemen; dat laten wij u dan binnen de eerste maand "
        "weten, met de reden."
    ),
    "This notice is made from the retention policies in force: when a policy changes, so does "
    "this notice.": (
        "Deze verklaring wordt gemaakt uit de bewaartermijnen die van kracht zijn: verandert een "
        "termijn, dan verandert deze verklaring mee."
    ),
    "Full privacy notice": "Volledige privacyverklaring",
    "We keep {label} {duration} {clock}.": "Wij bewaren {label} {duration} {clock}.",
    # durations
    "{n} day": "{n} dag",
    "{n} days": "{n} dagen",
    "{n} hour": "{n} uur",
    "{n} hours": "{n} uur",
    "{n} minute": "{n} minuut",
    "{n} minutes": "{n} minuten",
    "{n} second": "{n} seconde",
    "{n} seconds": "{n} seconden",
    "and": "en",
    # roles
    "reception staff": "de receptie",
    "security staff": "de beveiliging",
    "the privacy officer": "de privacy officer",
    # kinds: labels
    "visits": "bezoeken",
    "badge loans": "uitgeleende passen",
    "door events": "deurgebeurtenissen",
    "camera segments": "camerabeelden",
    "wifi leases": "wifi-verbindingen",
    "rejected inputs": "geweigerde invoer",
    "data-subject requests": "verzoeken van betrokkenen",
    "expected visits": "aangekondigde bezoeken",
    "hosts (directory)": "contactpersonen (adresboek)",
    "host notifications": "berichten aan contactpersonen",
    # kinds: purposes
    "to know who is in the building, for everyone's safety in an evacuation and for security": (
        "om te weten wie er in het gebouw is, voor ieders veiligheid bij een ontruiming en voor de "
        "beveiliging"
    ),
    "to know which visitor badge a visitor holds, so that it opens only the doors it should "
    "and comes back": (
        "om te weten welke bezoekerspas een bezoeker heeft, zodat die alleen de juiste deuren "
        "opent en terugkomt"
    ),
    "to secure the building: which badge opened which door, and when": (
        "om het gebouw te beveiligen: welke pas welke deur opende, en wanneer"
    ),
    "video surveillance of the premises, to prevent and investigate incidents": (
        "cameratoezicht op het terrein, om incidenten te voorkomen en te onderzoeken"
    ),
    "to run and secure the wireless network: which device had which network address, and when": (
        "om het draadloze netwerk te laten werken en te beveiligen: welk apparaat welk "
        "netwerkadres had, en wanneer"
    ),
    "to show what input was refused, so that faults can be found and fixed": (
        "om te laten zien welke invoer werd geweigerd, zodat fouten gevonden en verholpen worden"
    ),
    "to answer requests about personal data within the legal deadline, and to show that they "
    "were": (
        "om verzoeken over persoonsgegevens binnen de wettelijke termijn te beantwoorden, en om te "
        "laten zien dat dat gebeurde"
    ),
    "to prepare a visitor's arrival at the reception desk and sign them in quickly": (
        "om de komst van een bezoeker bij de receptie voor te bereiden en hem of haar snel aan te "
        "melden"
    ),
    "to know whom visitors come to see, and how to tell them that their visitor arrived": (
        "om te weten wie bezoekers komen bezoeken, en hoe die te laten weten dat hun bezoek er is"
    ),
    "to tell a host that their visitor arrived, retrying until the message is delivered": (
        "om een contactpersoon te laten weten dat het bezoek er is, en het opnieuw te proberen "
        "tot het bericht is afgeleverd"
    ),
    # kinds: data
    "name, company, the person visited, and the sign-in and sign-out times": (
        "naam, bedrijf, wie bezocht wordt, en de tijden van aan- en afmelden"
    ),
    "the number of the badge lent, and when it was lent and returned": (
        "het nummer van de uitgeleende pas, en wanneer die werd uitgeleend en teruggegeven"
    ),
    "the badge number, the door, the time, and whether the door opened": (
        "het pasnummer, de deur, de tijd, en of de deur openging"
    ),
    "camera images of the premises, with the camera and the time they were recorded": (
        "camerabeelden van het terrein, met de camera en de tijd van opname"
    ),
    "a device's hardware (MAC) address, its network address and name, and when it used the "
    "network": (
        "het hardware-adres (MAC) van een apparaat, het netwerkadres en de naam ervan, en wanneer "
        "het het netwerk gebruikte"
    ),
    "the refused input as it arrived, which may name a device or a person": (
        "de geweigerde invoer zoals die binnenkwam, waarin een apparaat of persoon kan staan"
    ),
    "the right used, whom the request is about, how to reach the person, its dates and its "
    "outcome": (
        "het gebruikte recht, over wie het verzoek gaat, hoe de persoon te bereiken is, de data en "
        "de uitkomst"
    ),
    "name, company, the person visited, the badge to lend, the expected day and the arrival": (
        "naam, bedrijf, wie bezocht wordt, de uit te lenen pas, de verwachte dag en de aankomst"
    ),
    "a member of staff's name, and the e-mail or webhook address to tell them at": (
        "de naam van een medewerker, en het e-mail- of webhookadres waarop die bericht krijgt"
    ),
    "the visitor's name and company, the sign-in time, the host, and the delivery attempts": (
        "naam en bedrijf van de bezoeker, de tijd van aanmelden, de contactpersoon, en de "
        "pogingen om het bericht af te leveren"
    ),
    # kinds: people
    "visitors": "bezoekers",
    "visitors and staff who use a badge": "bezoekers en medewerkers die een pas gebruiken",
    "everyone on the premises": "iedereen op het terrein",
    "users of the wireless network": "gebruikers van het draadloze netwerk",
    "visitors, staff and devices named in refused input": (
        "bezoekers, medewerkers en apparaten die in geweigerde invoer staan"
    ),
    "people who make a data-protection request": (
        "mensen die een verzoek over hun persoonsgegevens doen"
    ),
    "visitors who are announced": "aangekondigde bezoekers",
    "staff whom visitors come to see": "medewerkers die bezoek krijgen",
    "visitors and the staff they visit": "bezoekers en de medewerkers die zij bezoeken",
    # kinds: clocks
    "after sign-out": "na het afmelden",
    "after the badge is returned": "nadat de pas is teruggegeven",
    "after the door was used": "nadat de deur is gebruikt",
    "after the recording": "na de opname",
    "after the device was last seen on the network": (
        "nadat het apparaat voor het laatst op het netwerk is gezien"
    ),
    "after the input was refused": "nadat de invoer is geweigerd",
    "after the request is closed": "nadat het verzoek is afgehandeld",
    "after the expected day ends": "na afloop van de verwachte dag",
    "after the entry was last used or changed": (
        "nadat de vermelding voor het laatst is gebruikt of gewijzigd"
    ),
    "after the message was queued (a delivered one is deleted at once)": (
        "nadat het bericht klaargezet is (een afgeleverd bericht wordt meteen verwijderd)"
    ),
    # kinds: default legal bases
    "legitimate interests (GDPR article 6(1)(f)): the safety and security of the people and "
    "property on the premises": (
        "gerechtvaardigd belang (AVG artikel 6 lid 1 onder f): de veiligheid en beveiliging van de "
        "mensen en eigendommen op het terrein"
    ),
    "legitimate interests (GDPR article 6(1)(f)): receiving visitors and telling the people they "
    "visit that they arrived": (
        "gerechtvaardigd belang (AVG artikel 6 lid 1 onder f): bezoekers ontvangen en degenen die "
        "zij bezoeken laten weten dat zij er zijn"
    ),
    "legal obligation (GDPR article 6(1)(c)): answering data-protection requests (articles 12 "
    "to 22) and showing that they were answered (article 5(2))": (
        "wettelijke verplichting (AVG artikel 6 lid 1 onder c): verzoeken over persoonsgegevens "
        "beantwoorden (artikelen 12 tot en met 22) en aantonen dat dat gebeurde (artikel 5 lid 2)"
    ),
}

_CATALOGUES = {"nl": DUTCH}


class Untranslated(LookupError):
    """A sentence has no translation in the language asked for (strict rendering only)."""


def say(text: str, lang: str, *, strict: bool = False) -> str:
    """`text` in `lang`: as written for English, else its translation (English if none, unless
    `strict`, which raises Untranslated)."""
    if lang == "en":
        return text
    found = _CATALOGUES.get(lang, {}).get(text)
    if found is None:
        if strict:
            raise Untranslated(f"no {lang} for {text!r}")
        return text
    return found
