/// @file data/synthetic/languages_latin.hpp
/// @brief The suite's languages written in the Latin script: English, Spanish, French, German and Finnish.
#pragma once

#include "polyalpaca/data/synthetic/language_pack.hpp"

namespace polyalpaca::synthetic::languages {

inline constexpr LanguagePack english{
    "en", "English", "Latin", ", ",
    {"red", "blue", "green", "yellow", "black", "white", "grey", "pink"},
    {"cat", "dog", "horse", "cow", "bird", "mouse", "elephant", "giraffe"},
    {"apple", "pear", "plum", "banana", "lemon", "cherry", "grape", "strawberry"},
    {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"},
    {{
        {"Add the two numbers.", "What is the sum of these two numbers?", "Calculate the sum of the numbers."},
        {"Subtract the second number from the first.", "What is the first number minus the second?", ""},
        {"How many items are in the list?", "Count the items in the list.", ""},
        {"Sort the numbers from smallest to largest.", "Put these numbers in ascending order.", ""},
        {"Repeat the text exactly.", "Copy the following text.", ""},
        {"What is the first word in the list?", "Which word comes first in the list?", ""},
        {"What is the last word in the list?", "Which word comes last in the list?", ""},
        {"Which of the two words is longer?", "Which word has more letters?", ""},
        {"Write the number as a word.", "How is this number written in words?", ""},
    }},
    {"Colours: {list}.", "Animals: {list}.", "Fruits: {list}.", "{a} plus {b} equals {c}.",
     "{a} minus {b} equals {c}.", "The number {n} is written as {word}.", "The list \"{list}\" has {n} items.",
     "In ascending order: {list}.", "Counting: {list}.", "The first word in the list \"{list}\" is {word}.",
     "The last word in the list \"{list}\" is {word}.", "The word {a} is longer than the word {b}."},
};

inline constexpr LanguagePack spanish{
    "es", "Spanish", "Latin", ", ",
    {"rojo", "azul", "verde", "amarillo", "negro", "blanco", "gris", "rosa"},
    {"gato", "perro", "caballo", "vaca", "pájaro", "ratón", "elefante", "jirafa"},
    {"manzana", "pera", "ciruela", "plátano", "limón", "cereza", "uva", "fresa"},
    {"uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve", "diez"},
    {{
        {"Suma los dos números.", "¿Cuál es la suma de estos dos números?", "Calcula la suma de los números."},
        {"Resta el segundo número del primero.", "¿Cuánto es el primer número menos el segundo?", ""},
        {"¿Cuántos elementos hay en la lista?", "Cuenta los elementos de la lista.", ""},
        {"Ordena los números de menor a mayor.", "Pon estos números en orden ascendente.", ""},
        {"Repite el texto exactamente.", "Copia el siguiente texto.", ""},
        {"¿Cuál es la primera palabra de la lista?", "¿Qué palabra aparece primero en la lista?", ""},
        {"¿Cuál es la última palabra de la lista?", "¿Qué palabra aparece al final de la lista?", ""},
        {"¿Cuál de las dos palabras es más larga?", "¿Qué palabra tiene más letras?", ""},
        {"Escribe el número con letras.", "¿Cómo se escribe este número en palabras?", ""},
    }},
    {"Colores: {list}.", "Animales: {list}.", "Frutas: {list}.", "{a} más {b} es igual a {c}.",
     "{a} menos {b} es igual a {c}.", "El número {n} se escribe {word}.", "La lista \"{list}\" tiene {n} elementos.",
     "En orden ascendente: {list}.", "Contando: {list}.", "La primera palabra de la lista \"{list}\" es {word}.",
     "La última palabra de la lista \"{list}\" es {word}.", "La palabra {a} es más larga que la palabra {b}."},
};

inline constexpr LanguagePack french{
    "fr", "French", "Latin", ", ",
    {"rouge", "bleu", "vert", "jaune", "noir", "blanc", "gris", "rose"},
    {"chat", "chien", "cheval", "vache", "oiseau", "souris", "éléphant", "girafe"},
    {"pomme", "poire", "prune", "banane", "citron", "cerise", "raisin", "fraise"},
    {"un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix"},
    {{
        {"Additionne les deux nombres.", "Quelle est la somme de ces deux nombres ?", "Calcule la somme des nombres."},
        {"Soustrais le deuxième nombre du premier.", "Combien font le premier nombre moins le second ?", ""},
        {"Combien d'éléments y a-t-il dans la liste ?", "Compte les éléments de la liste.", ""},
        {"Trie les nombres du plus petit au plus grand.", "Range ces nombres par ordre croissant.", ""},
        {"Répète le texte à l'identique.", "Recopie le texte suivant.", ""},
        {"Quel est le premier mot de la liste ?", "Quel mot vient en premier dans la liste ?", ""},
        {"Quel est le dernier mot de la liste ?", "Quel mot vient en dernier dans la liste ?", ""},
        {"Lequel des deux mots est le plus long ?", "Quel mot a le plus de lettres ?", ""},
        {"Écris le nombre en toutes lettres.", "Comment s'écrit ce nombre en lettres ?", ""},
    }},
    {"Couleurs : {list}.", "Animaux : {list}.", "Fruits : {list}.", "{a} plus {b} égale {c}.",
     "{a} moins {b} égale {c}.", "Le nombre {n} s'écrit {word}.", "La liste « {list} » contient {n} éléments.",
     "Par ordre croissant : {list}.", "Compter : {list}.", "Le premier mot de la liste « {list} » est {word}.",
     "Le dernier mot de la liste « {list} » est {word}.", "Le mot {a} est plus long que le mot {b}."},
};

inline constexpr LanguagePack german{
    "de", "German", "Latin", ", ",
    {"rot", "blau", "grün", "gelb", "schwarz", "weiß", "grau", "rosa"},
    {"Katze", "Hund", "Pferd", "Kuh", "Vogel", "Maus", "Elefant", "Giraffe"},
    {"Apfel", "Birne", "Pflaume", "Banane", "Zitrone", "Kirsche", "Traube", "Erdbeere"},
    {"eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn"},
    {{
        {"Addiere die beiden Zahlen.", "Wie lautet die Summe dieser beiden Zahlen?", "Berechne die Summe der Zahlen."},
        {"Ziehe die zweite Zahl von der ersten ab.", "Was ergibt die erste Zahl minus die zweite?", ""},
        {"Wie viele Elemente enthält die Liste?", "Zähle die Elemente der Liste.", ""},
        {"Sortiere die Zahlen von der kleinsten zur größten.", "Bringe diese Zahlen in aufsteigende Reihenfolge.", ""},
        {"Wiederhole den Text genau.", "Schreibe den folgenden Text ab.", ""},
        {"Was ist das erste Wort der Liste?", "Welches Wort steht in der Liste an erster Stelle?", ""},
        {"Was ist das letzte Wort der Liste?", "Welches Wort steht in der Liste an letzter Stelle?", ""},
        {"Welches der beiden Wörter ist länger?", "Welches Wort hat mehr Buchstaben?", ""},
        {"Schreibe die Zahl als Wort.", "Wie schreibt man diese Zahl in Worten?", ""},
    }},
    {"Farben: {list}.", "Tiere: {list}.", "Obst: {list}.", "{a} plus {b} ist gleich {c}.",
     "{a} minus {b} ist gleich {c}.", "Die Zahl {n} schreibt man {word}.", "Die Liste „{list}“ hat {n} Elemente.",
     "In aufsteigender Reihenfolge: {list}.", "Zählen: {list}.", "Das erste Wort der Liste „{list}“ ist {word}.",
     "Das letzte Wort der Liste „{list}“ ist {word}.", "Das Wort {a} ist länger als das Wort {b}."},
};

inline constexpr LanguagePack finnish{
    "fi", "Finnish", "Latin", ", ",
    {"punainen", "sininen", "vihreä", "keltainen", "musta", "valkoinen", "harmaa", "vaaleanpunainen"},
    {"kissa", "koira", "hevonen", "lehmä", "lintu", "hiiri", "norsu", "kirahvi"},
    {"omena", "päärynä", "luumu", "banaani", "sitruuna", "kirsikka", "viinirypäle", "mansikka"},
    {"yksi", "kaksi", "kolme", "neljä", "viisi", "kuusi", "seitsemän", "kahdeksan", "yhdeksän", "kymmenen"},
    {{
        {"Laske nämä kaksi lukua yhteen.", "Mikä on näiden kahden luvun summa?", "Laske lukujen summa."},
        {"Vähennä toinen luku ensimmäisestä.", "Paljonko on ensimmäinen luku miinus toinen?", ""},
        {"Montako kohdetta luettelossa on?", "Laske luettelon kohteet.", ""},
        {"Järjestä luvut pienimmästä suurimpaan.", "Laita nämä luvut nousevaan järjestykseen.", ""},
        {"Toista teksti täsmälleen.", "Kopioi seuraava teksti.", ""},
        {"Mikä on luettelon ensimmäinen sana?", "Mikä sana on luettelossa ensimmäisenä?", ""},
        {"Mikä on luettelon viimeinen sana?", "Mikä sana on luettelossa viimeisenä?", ""},
        {"Kumpi sanoista on pidempi?", "Kummassa sanassa on enemmän kirjaimia?", ""},
        {"Kirjoita luku sanana.", "Miten tämä luku kirjoitetaan sanoin?", ""},
    }},
    {"Värejä: {list}.", "Eläimiä: {list}.", "Hedelmiä: {list}.", "{a} plus {b} on {c}.", "{a} miinus {b} on {c}.",
     "Luku {n} kirjoitetaan {word}.", "Luettelossa \"{list}\" on {n} kohdetta.", "Nousevassa järjestyksessä: {list}.",
     "Lasketaan: {list}.", "Luettelon \"{list}\" ensimmäinen sana on {word}.",
     "Luettelon \"{list}\" viimeinen sana on {word}.", "Sana {a} on pidempi kuin sana {b}."},
};

}  // namespace polyalpaca::synthetic::languages
