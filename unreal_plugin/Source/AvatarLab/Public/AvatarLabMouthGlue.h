// Plain C++ glue for 3D rigs: a session's mouth curves (visemes and ARKit blendshapes, by the service's names) and
// their mapping onto a mesh's morph targets. No Unreal headers, so tests/test_unreal_plugin.py compiles and runs it.

#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "avatarlab/avatarlab.h"

namespace AvatarLabGlue
{
	// The service's curve names (docs/motion.md). Frames arrive in the session's order; everything here maps by name.
	inline const std::vector<std::string>& ServiceVisemes()
	{
		static const std::vector<std::string> Names = {"sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou"};
		return Names;
	}
	inline const std::vector<std::string>& ArkitBlendshapes()
	{
		static const std::vector<std::string> Names = {"jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
			"mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight", "mouthRollLower", "mouthRollUpper",
			"mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight"};
		return Names;
	}

	// One mapping row: a stream curve drives a morph target, times a gain.
	struct FMorphRow
	{
		std::string Curve;
		std::string MorphTarget;
		float Gain = 1.0f;
	};

	enum class EMouthNaming : int32_t
	{
		ArkitBlendshapes = 0, // morph targets named like the ARKit curves (MetaHuman ARKit pose asset, Ready Player Me)
		OculusVisemes = 1,    // viseme_sil ... viseme_U (OVRLipSync, Ready Player Me)
		Custom = 2            // only the caller's rows
	};

	inline std::vector<FMorphRow> PresetRows(EMouthNaming Naming)
	{
		std::vector<FMorphRow> Rows;
		if (Naming == EMouthNaming::ArkitBlendshapes)
		{
			for (const std::string& Name : ArkitBlendshapes()) Rows.push_back({Name, Name, 1.0f});
		}
		else if (Naming == EMouthNaming::OculusVisemes)
		{
			static const char* const Oculus[] = {"viseme_sil", "viseme_PP", "viseme_FF", "viseme_TH", "viseme_DD", "viseme_kk",
				"viseme_CH", "viseme_SS", "viseme_nn", "viseme_RR", "viseme_aa", "viseme_E", "viseme_I", "viseme_O", "viseme_U"};
			for (size_t I = 0; I < ServiceVisemes().size(); ++I) Rows.push_back({ServiceVisemes()[I], Oculus[I], 1.0f});
		}
		return Rows;
	}

	// The mouth of the frame presented on the audio clock, as one flat name -> weight table (viseme and blendshape
	// names never collide). Before a frame, the rest pose: `sil` 1, everything else 0.
	struct FMouthCurves
	{
		std::vector<std::string> Names;
		std::vector<float> Weights;
		int64_t PtsMs = -1;
		int32_t NumVisemes = 0;

		FMouthCurves() { SetRest(ServiceVisemes(), ArkitBlendshapes()); }

		void SetRest(const std::vector<std::string>& Visemes, const std::vector<std::string>& Blendshapes)
		{
			Names = Visemes;
			Names.insert(Names.end(), Blendshapes.begin(), Blendshapes.end());
			Weights.assign(Names.size(), 0.0f);
			NumVisemes = static_cast<int32_t>(Visemes.size());
			for (size_t I = 0; I < Visemes.size(); ++I)
			{
				if (Visemes[I] == "sil") Weights[I] = 1.0f;
			}
			PtsMs = -1;
		}

		// Reads the session's presented block (any thread; the names once per session). False: the rest pose.
		bool Read(const avl_session* Session)
		{
			const int32_t NV = avl_session_mouth_count(Session, AVL_MOUTH_VISEMES);
			const int32_t NB = avl_session_mouth_count(Session, AVL_MOUTH_BLENDSHAPES);
			if (NV + NB == 0)
			{
				SetRest(ServiceVisemes(), ArkitBlendshapes());
				return false;
			}
			if (NumVisemes != NV || Names.size() != static_cast<size_t>(NV + NB) || !SameNames(Session, NV, NB))
			{
				std::vector<std::string> Visemes, Blendshapes;
				for (int32_t I = 0; I < NV; ++I) Visemes.emplace_back(avl_session_mouth_name(Session, AVL_MOUTH_VISEMES, I));
				for (int32_t I = 0; I < NB; ++I) Blendshapes.emplace_back(avl_session_mouth_name(Session, AVL_MOUTH_BLENDSHAPES, I));
				SetRest(Visemes, Blendshapes);
			}
			const avl_status Status = avl_session_mouth(Session, Weights.data(), NV, Weights.data() + NV, NB, &PtsMs);
			return Status == AVL_OK;
		}

		// 0 for a name the stream does not carry.
		float Weight(const std::string& Name) const
		{
			for (size_t I = 0; I < Names.size(); ++I)
			{
				if (Names[I] == Name) return Weights[I];
			}
			return 0.0f;
		}

	private:
		bool SameNames(const avl_session* Session, int32_t NV, int32_t NB) const
		{
			for (int32_t I = 0; I < NV + NB; ++I)
			{
				const char* Name = I < NV ? avl_session_mouth_name(Session, AVL_MOUTH_VISEMES, I)
				                          : avl_session_mouth_name(Session, AVL_MOUTH_BLENDSHAPES, I - NV);
				if (Name == nullptr || Names[static_cast<size_t>(I)] != Name) return false;
			}
			return true;
		}
	};

	// Morph target weights for one frame: rows on the same target add up, clamped to 0..1; rows whose curve the
	// stream lacks contribute 0 (so the target is still set, and a missing curve rests instead of sticking).
	inline std::vector<std::pair<std::string, float>> MorphTargetWeights(const FMouthCurves& Curves, const std::vector<FMorphRow>& Rows)
	{
		std::vector<std::pair<std::string, float>> Out;
		for (const FMorphRow& Row : Rows)
		{
			const float W = Curves.Weight(Row.Curve) * Row.Gain;
			bool bFound = false;
			for (auto& Target : Out)
			{
				if (Target.first == Row.MorphTarget)
				{
					Target.second += W;
					bFound = true;
				}
			}
			if (!bFound) Out.emplace_back(Row.MorphTarget, W);
		}
		for (auto& Target : Out) Target.second = Target.second < 0.0f ? 0.0f : (Target.second > 1.0f ? 1.0f : Target.second);
		return Out;
	}
}
