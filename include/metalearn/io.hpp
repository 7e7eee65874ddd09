#pragma once
// Umbrella of the io layer.
