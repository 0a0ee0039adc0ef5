"""Realistic sample names and texts for demo data, simulated traffic and benchmarks."""

GREETINGS = ["Hi", "Hello", "Good morning", "Hey", "Dear support", "Hallo", "Bonjour", ""]
PRODUCTS = [
    "blue mug",
    "running shoes",
    "rain jacket",
    "desk lamp",
    "phone case",
    "yoga mat",
    "coffee grinder",
    "backpack",
    "wool scarf",
    "kids' bike helmet",
    "linen shirt",
]


CUSTOMER_LINES = [
    "where is my order {order}? It still says processing.",
    "can I change the delivery address for order {order}?",
    "the {product} arrived broken, what should I do?",
    "do you ship to {country}?",
    "I'd like to return the {product}, it's too small.",
    "is the discount code still valid this weekend?",
    "I was charged twice for order {order}.",
    "the tracking link doesn't work 😕",
    "thanks, got it!",
    "ok",
    "Perfect, thank you 🙏",
    "when will the {product} be back in stock?",
    "can I pick it up in the store instead?",
    "the courier left it with a neighbour, all good.",
    "I never received a confirmation email for {order}.",
]

AGENT_LINES = [
    "Let me check that for you.",
    "Your order {order} leaves our warehouse today; tracking follows by email.",
    "Sorry about that! Could you send a photo of the {product}?",
    "Yes, we ship to {country} in 3–5 working days.",
    "I've refunded the duplicate charge, it will show in 2–3 days.",
    "Done — the address is updated.",
    "You're welcome! Anything else I can help with?",
    "The {product} is back next week; shall I reserve one?",
    "I've sent you a return label.",
]

COUNTRIES = ["Norway", "Poland", "Ireland", "Portugal", "Canada", "Japan", "Ukraine"]
FIRST = [
    "Olena",
    "Marek",
    "Sophie",
    "Lukas",
    "Aisha",
    "Diego",
    "Chiara",
    "Noah",
    "Emma",
    "Yusuf",
    "Hana",
    "Liam",
    "Mia",
    "Jonas",
    "Zoe",
    "Mateo",
    "Ines",
    "Oskar",
    "Lea",
    "Ali",
]


LAST = [
    "Kovalenko",
    "Nowak",
    "Martin",
    "Schneider",
    "Rahman",
    "Fernández",
    "Rossi",
    "Jansen",
    "Johansson",
    "Demir",
    "Novák",
    "O'Brien",
    "Silva",
    "Berg",
    "Moreau",
    "Costa",
    "Weber",
]
