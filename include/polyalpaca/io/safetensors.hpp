/// @file io/safetensors.hpp
/// @brief The safetensors format: SafetensorsFile, SafetensorsCheckpoint (single or sharded), write_safetensors.
#pragma once

#include "polyalpaca/io/safetensors_checkpoint.hpp"
#include "polyalpaca/io/safetensors_file.hpp"
#include "polyalpaca/io/safetensors_header.hpp"
#include "polyalpaca/io/safetensors_writer.hpp"
