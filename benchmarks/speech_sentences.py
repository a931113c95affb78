"""The espeak-ng sentence set of docs/speech.md (and of tests/test_speech.py): per language, sentences
with a lexicon term (the category and term expected) and harmless ones (nothing expected)."""

from __future__ import annotations

#: (text, category, term as in the bundled lists)
EN_TERMS = [
    ("Join the caliphate soldiers, kill all the infidels.", "extremism", "join the caliphate"),
    ("We should kill all jews in this city.", "hate", "kill all jews"),
    ("You are so ugly, go kill yourself.", "bullying", "kill yourself"),
    ("Nobody loves you, you should die.", "bullying", "you should die"),
    ("Heil Hitler, my brothers.", "extremism", "heil hitler"),
    ("Death to America, death to the infidels.", "extremism", "death to america"),
    ("They are vermin and must be removed.", "hate", "they are vermin"),
    ("Go back to your country, nobody wants you here.", "hate", "go back to your country"),
    ("You are worthless and everyone knows it.", "bullying", "you are worthless"),
    ("Tomorrow we will bomb the school.", "extremism", "bomb the school"),
    ("This is a racial holy war.", "extremism", "racial holy war"),
    ("Hang yourself, you piece of shit.", "bullying", "hang yourself"),
]
EN_HARMLESS = [
    "Good morning everyone, welcome back to my channel.",
    "Today I will show you how to bake a chocolate cake.",
    "The weather is sunny and warm this afternoon.",
    "Please like and subscribe for more videos.",
    "My cat loves to sleep on the sofa all day.",
    "We went to the beach with our family last weekend.",
    "This phone has a great camera and a long battery life.",
    "Remember to drink water and get enough sleep.",
    "The football match ended with a draw.",
    "Thank you so much for watching, see you next time.",
]
ID_TERMS = [
    ("Kamu jelek banget, mending mati aja lu.", "bullying", "mending mati"),
    ("Dasar goblok, kamu memang bodoh.", "bullying", "dasar goblok"),
    ("Bunuh semua kafir di kota ini.", "hate", "bunuh semua kafir"),
    ("Ayo gabung dengan daulah islamiyah.", "extremism", "daulah islamiyah"),
    ("Perangi thoghut sekarang juga.", "extremism", "perangi thoghut"),
    ("Kamu tidak pantas hidup di dunia ini.", "bullying", "tidak pantas hidup"),
    ("Mending bunuh diri saja, tidak ada yang peduli.", "bullying", "mending bunuh diri"),
    ("Dasar monyet, pergi dari sini.", "bullying", "dasar monyet"),
    ("Usir cina dari negeri ini.", "hate", "usir cina"),
    ("Kamu itu sampah masyarakat.", "bullying", "sampah masyarakat"),
    ("Mereka ras rendahan.", "hate", "ras rendahan"),
    ("Bunuh polisi yang menjaga jalan.", "extremism", "bunuh polisi"),
]
ID_HARMLESS = [
    "Selamat pagi semuanya, apa kabar hari ini?",
    "Hari ini kita akan memasak nasi goreng bersama.",
    "Cuaca di Jakarta sangat panas siang ini.",
    "Jangan lupa like dan subscribe ya teman teman.",
    "Kucing saya suka tidur di atas kasur.",
    "Kami pergi ke pantai bersama keluarga minggu lalu.",
    "Terima kasih sudah menonton video ini.",
    "Besok saya harus berangkat ke sekolah pagi sekali.",
    "Harga cabai di pasar naik lagi minggu ini.",
    "Ayo kita belajar bahasa Inggris bersama.",
]
#: espeak-ng speed (words a minute) per language: Indonesian at 140 survives Whisper base better.
SPEED = {"en": 175, "id": 140}
