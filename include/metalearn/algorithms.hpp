#pragma once
// Umbrella of the algorithms layer.
