#pragma once
// Umbrella of the nn layer.
