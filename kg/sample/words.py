"""Vocabularies the fictional catalog is built from.

Titles and names are assembled from parts by mixed-radix codes (see
``catalog``), so each list's length is part of a capacity: 4 patterns x 24
adjectives x 40 nouns x 32**3 place names give ~126M distinct titles, 64 first
names x 32**3 surnames ~2M distinct people. Translations are word by word,
grammar be damned: what matters to matching is that a translated title shares
nothing with the original but the invented place name.
"""

from __future__ import annotations

LANGUAGES = ("en", "fr", "de", "es", "it", "ko", "ja")

# country code, language, adjective (for abstracts), weight
COUNTRIES = (
    ("US", "en", "American", 40),
    ("GB", "en", "British", 12),
    ("FR", "fr", "French", 10),
    ("DE", "de", "German", 8),
    ("ES", "es", "Spanish", 7),
    ("IT", "it", "Italian", 6),
    ("KR", "ko", "South Korean", 9),
    ("JP", "ja", "Japanese", 8),
)

# English, French, German, Spanish, Italian
ADJECTIVES = (
    ("Silent", "Silencieux", "Stille", "Silencioso", "Silenzioso"),
    ("Broken", "Brisé", "Zerbrochene", "Roto", "Spezzato"),
    ("Last", "Dernier", "Letzte", "Último", "Ultimo"),
    ("Golden", "Doré", "Goldene", "Dorado", "Dorato"),
    ("Hidden", "Caché", "Verborgene", "Oculto", "Nascosto"),
    ("Dark", "Sombre", "Dunkle", "Oscuro", "Oscuro"),
    ("Lost", "Perdu", "Verlorene", "Perdido", "Perduto"),
    ("Red", "Rouge", "Rote", "Rojo", "Rosso"),
    ("Cold", "Froid", "Kalte", "Frío", "Freddo"),
    ("Endless", "Infini", "Endlose", "Infinito", "Infinito"),
    ("Wild", "Sauvage", "Wilde", "Salvaje", "Selvaggio"),
    ("Quiet", "Calme", "Ruhige", "Tranquilo", "Tranquillo"),
    ("Burning", "Brûlant", "Brennende", "Ardiente", "Ardente"),
    ("Secret", "Secret", "Geheime", "Secreto", "Segreto"),
    ("Little", "Petit", "Kleine", "Pequeño", "Piccolo"),
    ("Long", "Long", "Lange", "Largo", "Lungo"),
    ("Distant", "Lointain", "Ferne", "Lejano", "Lontano"),
    ("Bitter", "Amer", "Bittere", "Amargo", "Amaro"),
    ("Bright", "Brillant", "Helle", "Brillante", "Luminoso"),
    ("Empty", "Vide", "Leere", "Vacío", "Vuoto"),
    ("Strange", "Étrange", "Seltsame", "Extraño", "Strano"),
    ("Sweet", "Doux", "Süße", "Dulce", "Dolce"),
    ("Blue", "Bleu", "Blaue", "Azul", "Blu"),
    ("Black", "Noir", "Schwarze", "Negro", "Nero"),
)

NOUNS = (
    ("Harbor", "Port", "Hafen", "Puerto", "Porto"),
    ("Night", "Nuit", "Nacht", "Noche", "Notte"),
    ("Garden", "Jardin", "Garten", "Jardín", "Giardino"),
    ("River", "Rivière", "Fluss", "Río", "Fiume"),
    ("House", "Maison", "Haus", "Casa", "Dimora"),
    ("Road", "Route", "Straße", "Camino", "Strada"),
    ("Summer", "Été", "Sommer", "Verano", "Estate"),
    ("Winter", "Hiver", "Winter", "Invierno", "Inverno"),
    ("Mirror", "Miroir", "Spiegel", "Espejo", "Specchio"),
    ("Storm", "Tempête", "Sturm", "Tormenta", "Tempesta"),
    ("Island", "Île", "Insel", "Isla", "Isola"),
    ("Train", "Train", "Zug", "Tren", "Treno"),
    ("Letter", "Lettre", "Brief", "Carta", "Lettera"),
    ("Dream", "Rêve", "Traum", "Sueño", "Sogno"),
    ("City", "Ville", "Stadt", "Ciudad", "Città"),
    ("Forest", "Forêt", "Wald", "Bosque", "Foresta"),
    ("Song", "Chanson", "Lied", "Canción", "Canzone"),
    ("Fire", "Feu", "Feuer", "Fuego", "Fuoco"),
    ("Shadow", "Ombre", "Schatten", "Sombra", "Ombra"),
    ("Heart", "Cœur", "Herz", "Corazón", "Cuore"),
    ("Bridge", "Pont", "Brücke", "Puente", "Ponte"),
    ("Door", "Porte", "Tür", "Puerta", "Porta"),
    ("Voice", "Voix", "Stimme", "Voz", "Voce"),
    ("Sea", "Mer", "Meer", "Mar", "Mare"),
    ("Moon", "Lune", "Mond", "Luna", "Luna"),
    ("Star", "Étoile", "Stern", "Estrella", "Stella"),
    ("Game", "Jeu", "Spiel", "Juego", "Gioco"),
    ("Hunter", "Chasseur", "Jäger", "Cazador", "Cacciatore"),
    ("Daughter", "Fille", "Tochter", "Hija", "Figlia"),
    ("Stranger", "Inconnu", "Fremde", "Forastero", "Straniero"),
    ("Kingdom", "Royaume", "Reich", "Reino", "Regno"),
    ("Promise", "Promesse", "Versprechen", "Promesa", "Promessa"),
    ("Journey", "Voyage", "Reise", "Viaje", "Viaggio"),
    ("Valley", "Vallée", "Tal", "Valle", "Vallata"),
    ("Tower", "Tour", "Turm", "Torre", "Torre"),
    ("Wolf", "Loup", "Wolf", "Lobo", "Lupo"),
    ("Rain", "Pluie", "Regen", "Lluvia", "Pioggia"),
    ("Window", "Fenêtre", "Fenster", "Ventana", "Finestra"),
    ("Orchard", "Verger", "Obstgarten", "Huerto", "Frutteto"),
    ("Empire", "Empire", "Imperium", "Imperio", "Impero"),
)

# Title patterns per language: {a} adjective, {n} noun, {p} invented place name.
# Every pattern uses all three parts, so distinct codes give distinct titles.
PATTERNS = {
    "en": ("The {a} {n} of {p}", "{p}: The {a} {n}", "{a} {n} in {p}", "{p} and the {a} {n}"),
    "fr": ("Le {n} {a} de {p}", "{p} : Le {n} {a}", "{n} {a} à {p}", "{p} et le {n} {a}"),
    "de": ("Der {a} {n} von {p}", "{p}: Der {a} {n}", "{a} {n} in {p}", "{p} und der {a} {n}"),
    "es": ("El {n} {a} de {p}", "{p}: El {n} {a}", "{n} {a} en {p}", "{p} y el {n} {a}"),
    "it": ("Il {n} {a} di {p}", "{p}: Il {n} {a}", "{n} {a} a {p}", "{p} e il {n} {a}"),
    "ko": ("{p}ui {a} {n}", "{p}: {a} {n}", "{p}eseo {a} {n}", "{p}wa {a} {n}"),
    "ja": ("{p} no {a} {n}", "{p}: {a} {n}", "{p} de {a} {n}", "{p} to {a} {n}"),
}

# Romanised stand-ins for Korean and Japanese words: syllable strings, one per English word.
_KO_SYL = ("ga", "na", "da", "ra", "ma", "ba", "sa", "ja", "ha", "geu", "neul", "dal", "bit", "san", "gang", "mun")
_JA_SYL = ("ka", "ki", "ku", "sa", "shi", "su", "ta", "chi", "na", "ni", "ha", "hi", "mi", "yo", "ra", "ri")


def _romanised(syllables: tuple[str, ...], k: int) -> str:
    """A two-or-three syllable word, distinct for each k < 16**2."""
    word = syllables[k % 16] + syllables[(k // 16 + 5 * k) % 16]
    return word + syllables[(3 * k + 7) % 16] if k % 3 else word


def _with_asian(table: tuple[tuple[str, ...], ...], offset: int) -> dict[str, tuple[str, ...]]:
    by_lang = {lang: tuple(row[j] for row in table) for j, lang in enumerate(LANGUAGES[:5])}
    by_lang["ko"] = tuple(_romanised(_KO_SYL, k + offset) for k in range(len(table)))
    by_lang["ja"] = tuple(_romanised(_JA_SYL, k + offset) for k in range(len(table)))
    return by_lang


ADJ = _with_asian(ADJECTIVES, 0)
NOUN = _with_asian(NOUNS, 100)

SYLLABLES = (
    "ka", "ro", "ve", "lin", "mar", "to", "sa", "ne", "bri", "dor", "el", "fa", "gu", "ha", "is", "jo",
    "ku", "la", "mi", "nor", "os", "pe", "qui", "ra", "sel", "tan", "u", "vi", "wen", "ya", "zel", "an",
)
SURNAME_ENDINGS = (
    "son", "er", "ini", "ez", "ov", "ski", "berg", "ard", "elli", "ano", "strom", "ova", "ier", "ton", "ic", "a",
    "sen", "o", "ay", "ian", "ek", "i", "man", "eau", "ada", "is", "ens", "ley", "ura", "ama", "oto", "ong",
)
FIRST_NAMES = (
    "Anna", "Daniel", "Maria", "James", "Sofia", "Lucas", "Emma", "Hugo", "Claire", "Marco", "Yuna", "Kenji",
    "Elena", "Pierre", "Julia", "Tomas", "Hana", "Min", "Laura", "Felix", "Sara", "Diego", "Nora", "Oliver",
    "Ines", "Paolo", "Mei", "Jonas", "Lea", "Victor", "Aiko", "Sung", "Greta", "Rafael", "Chloe", "Stefan",
    "Lucia", "Adam", "Rosa", "Henrik", "Alice", "Mateo", "Ji", "Haruto", "Vera", "Samuel", "Camille", "Bruno",
    "Ida", "Leon", "Nina", "Oscar", "Eva", "Luca", "Mina", "Ryo", "Olga", "Pablo", "Iris", "Theo", "Zoe",
    "Carl", "Dana", "Emil",
)

GENRES = (
    "Drama", "Comedy", "Thriller", "Crime", "Romance", "Horror",
    "Science Fiction", "Fantasy", "Documentary", "Animation", "Adventure", "Mystery",
)

# Short titles real catalogs reuse for unrelated works ("Mother", "Heat", "Crash").
COMMON_TITLES = (
    "Mother", "Home", "The Return", "Crash", "Alone", "Twins", "The Gift", "Fallen", "Run", "The Host",
    "Heat", "Traffic", "Paradise", "Ghost", "Sisters", "Hunger", "Silence", "Bliss", "Fury", "The Island",
    "Oldboy", "Insomnia", "Solaris", "Nikita", "Psycho", "Casino", "Contact", "Vertigo", "Rush", "Shame",
    "Drive", "Sunshine",
)

PLOTS = (
    "The {a} {n} changes everything for the people of {p}.",
    "In {p}, the {n} hides the {a} truth.",
    "Years after the {a} {n}, an old promise brings a family back to {p}.",
    "Nobody in {p} believes the story of the {a} {n}.",
    "A journey to {p} turns into a search for the {a} {n}.",
    "When the {n} goes {a}, {p} is never the same.",
)

ROMAN = ("", "I", "II", "III", "IV", "V")
