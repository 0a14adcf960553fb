"""What the help centre answers, by the words that name it (the offline assistant).

``SUPPORT_WORDS`` route a message to support while the embedding API is away
(``router.keyword_route``). Among them, ``OWN_SUBJECT`` names a subject a message asks about
whatever came before it (``follow_ups``): "is it safe for my baby?" after "what's your strongest
manuka?" asks the babies article, and "or can I pay with PayPal?" after a question about manuka
asks how to pay, not for manuka.
"""

from __future__ import annotations

import re

# Health and safety, and the shop's policies on paying, returning and cancelling. Not delivery:
# "can it ship today?" about a product just listed asks about that product; nor a product's
# state or care ("a solid one?", "is it safe?"), which a follow-up says of the earlier subject.
OWN_SUBJECT_WORDS = (
    r"bab(?:y|ies)|infants?|toddlers?|newborns?|allerg(?:y|ies|ic)|pregnan(?:t|cy)|breastfeeding"
    r"|botulism|diabet(?:es|ic|ics)|blood sugar|payments?|paypal"
    r"|pay(?:ing)?\s+(?:by|with|via|using|in)|return(?:s|ed|ing)?|refund(?:s|ed)?"
    r"|cancel(?:led|ling)?|customs|discount codes?|promo codes?|voucher|newsletter|opening hours"
)
OWN_SUBJECT = re.compile(rf"\b(?:{OWN_SUBJECT_WORDS})\b", re.IGNORECASE)
# Matched against lower-cased text.
SUPPORT_WORDS = re.compile(
    rf"\b(?:{OWN_SUBJECT_WORDS}"
    r"|deliver(?:y|ies|ed)?|shipping|ship(?:ped)?|postage|posted|courier|dispatch(?:ed)?"
    r"|track(?:ing)?|my order|broken|damaged|smashed|leak(?:s|ed|ing)?|store|storing|storage"
    r"|crystalli[sz](?:e|es|ed|ing|ation)|grainy|solid|shelf life|best before|safe|safety"
    r"|missing|wrong (?:item|jar|product|order)|collect(?:ion)?)\b"
)
