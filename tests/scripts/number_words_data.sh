# Sourced by the trainer test scripts. write_number_words DIR COUNT writes DIR/en.jsonl and DIR/fr.jsonl: COUNT
# parallel Alpaca records per language (the same id is the same task in both), "write the number N in words", every
# third with an input.
write_number_words() {
    local dir=$1 count=$2 lang out i a b
    local words_en=(zero one two three four five six seven eight nine)
    local words_fr=(zéro un deux trois quatre cinq six sept huit neuf)
    for lang in en fr; do
        out="$dir/$lang.jsonl"
        : > "$out"
        for i in $(seq 0 $((count - 1))); do
            a=$((i % 10)) b=$(((i * 7 + 3) % 10))
            if [ "$lang" = en ]; then
                echo "{\"id\": \"t$i\", \"instruction\": \"Write the number $a in words.\", \"input\": \"\", \"output\": \"${words_en[$a]}\"}" >> "$out"
            else
                echo "{\"id\": \"t$i\", \"instruction\": \"Écris le nombre $a en lettres.\", \"input\": \"\", \"output\": \"${words_fr[$a]}\"}" >> "$out"
            fi
            if [ $((i % 3)) -eq 0 ]; then sed -i '$ s/"input": ""/"input": "'"$b"' et '"$a"'"/' "$out"; fi
        done
    done
}
